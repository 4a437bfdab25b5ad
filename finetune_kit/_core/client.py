"""The client every request goes through: the caller's, or one default per process.

finetune_kit never speaks HTTP itself. Each public call takes ``client=``; when it is omitted,
one client is built from the standard ``OPENAI_*`` environment on first use (never at import,
so importing the package needs no key; the async default is one per event loop). Either way
the client used is ``client.with_options(max_retries=0)``: the SDK's own retries are off
because the retry layer in ``_retry.py`` decides, and stacked retries would multiply attempts.
``with_options`` keeps the client's class, so ``AzureOpenAI`` and any ``base_url`` work unchanged.

Flows: the job and upload logic is written once, as generators that *describe* their requests
(:class:`Request`), waits (:class:`Sleep`) and retried groups of requests (:class:`Attempt`)
without performing them. :func:`run_flow` performs them on a sync client and
:func:`arun_flow` on an async one, every request through the retry layer. ``Job`` and
``AsyncJob`` are thin shells over the same flows, so their behaviour cannot drift apart.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import openai

from .retry import DEFAULT_RETRY, acall_with_retry, call_with_retry, is_ambiguous

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from .retry import RetryPolicy

__all__ = [
    "AnyClient",
    "Attempt",
    "Effect",
    "Flow",
    "Request",
    "Sleep",
    "arun_flow",
    "once",
    "resolve_async_client",
    "resolve_client",
    "run_flow",
]

T = TypeVar("T")

logger = logging.getLogger("finetune_kit")

AnyClient: TypeAlias = "openai.OpenAI | openai.AsyncOpenAI"
"""Either client: a :class:`Request` calls the same resource method on both."""

_lock = threading.Lock()
_default_client: openai.OpenAI | None = None
_default_async_client: openai.AsyncOpenAI | None = None
_default_async_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
    weakref.WeakKeyDictionary()
)


def _default() -> openai.OpenAI:
    global _default_client
    with _lock:
        if _default_client is None:
            _default_client = openai.OpenAI()
        return _default_client


def _default_async() -> openai.AsyncOpenAI:
    global _default_async_client
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    with _lock:
        if loop is None:
            if _default_async_client is None:
                _default_async_client = openai.AsyncOpenAI()
            return _default_async_client
        # One per event loop: pooled connections belong to the loop that opened them, and a
        # notebook or script that calls asyncio.run() twice gets a new loop each time.
        client = _default_async_by_loop.get(loop)
        if client is None:
            client = _default_async_by_loop[loop] = openai.AsyncOpenAI()
        return client


def resolve_client(client: openai.OpenAI | None) -> openai.OpenAI:
    """The client to send requests with: ``client`` (or the default), SDK retries off.

    Raises:
        openai.OpenAIError: when ``client`` is None and the environment holds no API key.
    """
    return (client if client is not None else _default()).with_options(max_retries=0)


def resolve_async_client(client: openai.AsyncOpenAI | None) -> openai.AsyncOpenAI:
    """The async sibling of :func:`resolve_client`."""
    return (client if client is not None else _default_async()).with_options(max_retries=0)


def _reset_defaults() -> None:
    """Forget the default clients (tests; or after changing ``OPENAI_*`` at runtime)."""
    global _default_client, _default_async_client
    with _lock:
        _default_client = None
        _default_async_client = None
        _default_async_by_loop.clear()


@dataclass(frozen=True)
class Request:
    """One SDK call as data: ``call(client)`` returns the result (or, async, an awaitable).

    Attributes:
        description: what the call does, for retry logs (e.g. ``"retrieve job ftjob-1"``).
        call: makes the call on the given client.
    """

    description: str
    call: Callable[[AnyClient], object]


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (with the policy's injected sleep, so tests never really wait)."""

    seconds: float


@dataclass(frozen=True)
class Attempt:
    """Run ``flow()`` as one unit under the retry policy.

    The requests inside are made once each; when one fails, the whole unit is retried from a
    fresh ``flow()``. That is how a non-idempotent call first looks for the effect of an
    earlier, ambiguous attempt before sending again.
    """

    description: str
    flow: Callable[[], Flow[object]]


def once(description: str, send: Request, look: Callable[[], Flow[object | None]]) -> Attempt:
    """An :class:`Attempt` that makes a non-idempotent request take effect at most once.

    The first attempt sends ``send``. After an ambiguous failure (timeout, dropped connection,
    5xx: the service may have acted before the reply was lost), every later attempt first runs
    ``look``, a flow that finds the effect of an earlier attempt (the job created, the file
    stored, ...) and returns it, or None; only when it finds nothing is ``send`` sent again.
    """
    ambiguous = [False]

    def attempt() -> Flow[object]:
        if ambiguous[0]:
            found = yield from look()
            if found is not None:
                logger.warning(
                    "%s: an earlier attempt took effect (%s); using it instead of sending again",
                    description,
                    getattr(found, "id", found),
                )
                return found
        try:
            return (yield send)
        except Exception as exc:
            ambiguous[0] = ambiguous[0] or is_ambiguous(exc)
            raise

    return Attempt(description, attempt)


Effect: TypeAlias = "Request | Sleep | Attempt"
Flow: TypeAlias = "Generator[Effect, Any, T]"
"""A generator yielding effects, receiving their results, returning a ``T``."""


def run_flow(
    flow: Flow[T], client: openai.OpenAI, policy: RetryPolicy | None, *, retried: bool = True
) -> T:
    """Perform ``flow``'s effects on a sync client; the flow's return value is returned.

    A failed effect is thrown into the flow (which may handle it); ``retried=False`` makes each
    request exactly once (used inside an :class:`Attempt`).
    """
    policy = policy or DEFAULT_RETRY
    reply: object = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as done:
            result: T = done.value
            return result
        reply, error = None, None
        try:
            reply = _perform(effect, client, policy, retried=retried)
        except BaseException as exc:  # thrown into the flow, which re-raises what it can't use
            error = exc


def _perform(
    effect: Effect, client: openai.OpenAI, policy: RetryPolicy, *, retried: bool
) -> object:
    if isinstance(effect, Sleep):
        (policy.sleep or time.sleep)(effect.seconds)
        return None
    if isinstance(effect, Attempt):
        return call_with_retry(
            policy,
            lambda: run_flow(effect.flow(), client, policy, retried=False),
            description=effect.description,
        )
    if not retried:
        return effect.call(client)
    return call_with_retry(policy, lambda: effect.call(client), description=effect.description)


async def arun_flow(
    flow: Flow[T], client: openai.AsyncOpenAI, policy: RetryPolicy | None, *, retried: bool = True
) -> T:
    """The async sibling of :func:`run_flow`."""
    policy = policy or DEFAULT_RETRY
    reply: object = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as done:
            result: T = done.value
            return result
        reply, error = None, None
        try:
            reply = await _aperform(effect, client, policy, retried=retried)
        except BaseException as exc:  # thrown into the flow, which re-raises what it can't use
            error = exc


async def _aperform(
    effect: Effect, client: openai.AsyncOpenAI, policy: RetryPolicy, *, retried: bool
) -> object:
    if isinstance(effect, Sleep):
        await (policy.async_sleep or asyncio.sleep)(effect.seconds)
        return None
    if isinstance(effect, Attempt):
        return await acall_with_retry(
            policy,
            lambda: arun_flow(effect.flow(), client, policy, retried=False),
            description=effect.description,
        )
    if not retried:
        return await _resolved(effect.call(client))
    return await acall_with_retry(
        policy, lambda: _resolved(effect.call(client)), description=effect.description
    )


async def _resolved(value: object) -> object:
    # Async resource methods return coroutines, list methods an awaitable paginator.
    return await value if inspect.isawaitable(value) else value
