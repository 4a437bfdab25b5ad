"""The client every request goes through: the caller's, or one default per process.

finetune_kit never speaks HTTP itself. Each public call takes ``client=``; when it is omitted,
the default :class:`~finetune_kit.Session`'s client is used, and when that has none, one client
is built from the standard ``OPENAI_*`` environment on first use (never at import, so importing
the package needs no key; the async default is one per event loop); see ``session.py``. Either way
the client used is ``client.with_options(max_retries=0)``: the SDK's own retries are off
because the retry layer in ``retry.py`` decides, and stacked retries would multiply attempts.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from .clock import SYSTEM_CLOCK
from .retry import DEFAULT_RETRY, acall_with_retry, call_with_retry, is_ambiguous
from .session import _reset_env_clients, abind, bind, default_session, policy_with_clock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

    import openai

    from .clock import Clock
    from .retry import RetryPolicy

__all__ = [
    "AnyClient",
    "Attempt",
    "Effect",
    "Flow",
    "Request",
    "Sleep",
    "arun_flow",
    "arun_flow_off_loop",
    "once",
    "resolve_async_client",
    "resolve_client",
    "run_flow",
]

T = TypeVar("T")

logger = logging.getLogger("finetune_kit")

AnyClient: TypeAlias = "openai.OpenAI | openai.AsyncOpenAI"
"""Either client: a :class:`Request` calls the same resource method on both."""


def resolve_client(client: openai.OpenAI | None) -> openai.OpenAI:
    """The client to send requests with: ``client`` (or the default session's), SDK retries off.

    A shorthand for ``bind(client=client).client`` (see :func:`~._core.session.bind`).

    Raises:
        openai.OpenAIError: when no client is given or bound and the environment holds no key.
    """
    return bind(client=client).client


def resolve_async_client(client: openai.AsyncOpenAI | None) -> openai.AsyncOpenAI:
    """The async sibling of :func:`resolve_client`."""
    return abind(client=client).client


def _reset_defaults() -> None:
    """Forget the default clients (tests; or after changing ``OPENAI_*`` at runtime)."""
    _reset_env_clients()


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


@dataclass(frozen=True)
class _How:
    """How a run performs effects: the policy (with its clock), the clock, and whether each
    request is retried on its own (not inside an :class:`Attempt`, which retries as a whole)."""

    policy: RetryPolicy
    clock: Clock
    retried: bool = True

    def once(self) -> _How:
        """The same, each request made once: an :class:`Attempt`'s flow, retried as a whole."""
        return _How(self.policy, self.clock, retried=False)

    def call(self, call: Callable[[], T], description: str) -> T:
        """``call()`` through the retry layer, waiting on this run's clock."""
        return call_with_retry(self.policy, call, description=description, clock=self.clock)

    async def acall(self, call: Callable[[], Awaitable[T]], description: str) -> T:
        """The async sibling of :meth:`call`."""
        return await acall_with_retry(self.policy, call, description=description, clock=self.clock)


def _timed(policy: RetryPolicy | None) -> _How:
    # Waits happen on the policy's own sleeps when it has them, else on the default session's
    # clock.
    clock = default_session().clock or SYSTEM_CLOCK
    return _How(policy_with_clock(policy or DEFAULT_RETRY, clock), clock)


class _Stepper:
    """A flow between two effects, sent the last effect's result or thrown its error.

    The sync loop, the async loop and the off-loop driver differ only in how (and on which
    thread) an effect is performed; stepping the generator lives here once. Used as a context
    manager around performing an effect, it keeps the effect's error for the next step instead
    of raising it: the flow re-raises what it cannot use.
    """

    def __init__(self, flow: Flow[Any]) -> None:
        self._flow = flow
        self.reply: object = None
        self._error: BaseException | None = None
        self.result: Any = None

    def step(self) -> Effect | None:
        """Advance the flow to its next effect; None once it has returned (see ``result``)."""
        reply, error = self.reply, self._error
        self.reply, self._error = None, None
        try:
            return self._flow.send(reply) if error is None else self._flow.throw(error)
        except StopIteration as done:
            self.result = done.value
            return None

    def __enter__(self) -> _Stepper:
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> bool:
        self._error = error
        return error is not None


def run_flow(flow: Flow[T], client: openai.OpenAI, policy: RetryPolicy | None) -> T:
    """Perform ``flow``'s effects on a sync client; the flow's return value is returned.

    A failed effect is thrown into the flow (which may handle it). Waits and time go through
    the default session's clock, unless ``policy`` sets its own sleeps.
    """
    return _run(flow, client, _timed(policy))


def _run(flow: Flow[T], client: openai.OpenAI, how: _How) -> T:
    stepper = _Stepper(flow)
    while (effect := stepper.step()) is not None:
        with stepper:
            stepper.reply = _perform(effect, client, how)
    result: T = stepper.result
    return result


def _perform(effect: Effect, client: openai.OpenAI, how: _How) -> object:
    if isinstance(effect, Sleep):
        (how.policy.sleep or how.clock.sleep)(effect.seconds)
        return None
    if isinstance(effect, Attempt):
        return how.call(lambda: _run(effect.flow(), client, how.once()), effect.description)
    if not how.retried:
        return effect.call(client)
    return how.call(lambda: effect.call(client), effect.description)


async def arun_flow(flow: Flow[T], client: openai.AsyncOpenAI, policy: RetryPolicy | None) -> T:
    """The async sibling of :func:`run_flow`."""
    return await _arun(flow, client, _timed(policy))


async def _arun(flow: Flow[T], client: openai.AsyncOpenAI, how: _How) -> T:
    stepper = _Stepper(flow)
    while (effect := stepper.step()) is not None:
        with stepper:
            stepper.reply = await _aperform(effect, client, how)
    result: T = stepper.result
    return result


async def _aperform(effect: Effect, client: openai.AsyncOpenAI, how: _How) -> object:
    if isinstance(effect, Sleep):
        await (how.policy.async_sleep or how.clock.asleep)(effect.seconds)
        return None
    if isinstance(effect, Attempt):
        return await how.acall(lambda: _arun(effect.flow(), client, how.once()), effect.description)
    if not how.retried:
        return await _resolved(effect.call(client))
    return await how.acall(lambda: _resolved(effect.call(client)), effect.description)


def _single(effect: Effect) -> Flow[Any]:
    result = yield effect
    return result


async def arun_flow_off_loop(
    flow: Flow[T], client: openai.AsyncOpenAI, policy: RetryPolicy | None
) -> T:
    """:func:`arun_flow`, with the flow's own code off the event loop.

    Each step of the generator (everything between two effects: validating, hashing and
    reading a Dataset) runs in a worker thread; each effect is performed by :func:`arun_flow`
    on the loop, so retries, sleeps and attempts behave exactly as there. The generator is
    advanced by one thread at a time.
    """
    stepper = _Stepper(flow)
    while (effect := await asyncio.to_thread(stepper.step)) is not None:
        with stepper:
            stepper.reply = await arun_flow(_single(effect), client, policy)
    result: T = stepper.result
    return result


async def _resolved(value: object) -> object:
    # Async resource methods return coroutines, list methods an awaitable paginator.
    return await value if inspect.isawaitable(value) else value
