"""``Session``: an app binds its client, retry policy, clock and progress once.

Like ``openai.OpenAI``'s ``with_options()``, a :class:`Session` is frozen and
:meth:`Session.with_options` returns a changed copy. Every entry point resolves what it uses
through :func:`bind` / :func:`abind`: per-call arguments first, then the session's, then the
defaults (a client from the standard ``OPENAI_*`` environment, built on first use and never at
import; :data:`~finetune_kit._core.retry.DEFAULT_RETRY`; the system clock; progress on).

The session's clock is the one place for time. A :class:`RetryPolicy` with its own
``sleep``/``async_sleep``/``clock`` fields still works (they were the only way to inject time
before sessions existed): when given, they override the session's clock for that policy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeAlias, TypedDict, TypeVar

import openai

from ..facts._endpoints import EndpointKind, check_endpoint_kind, endpoint_kind_of_url
from ..facts._models import FactsTable, ModelFacts, model_facts
from .clock import SYSTEM_CLOCK, Clock, elapsed_timer
from .keywords import changed
from .retry import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "AsyncBound",
    "BindKwargs",
    "Bound",
    "Session",
    "SessionChanges",
    "abind",
    "bind",
    "default_session",
    "endpoint_of",
    "facts_for",
    "set_default_session",
]


@dataclass(frozen=True)
class Session:
    """What an app binds once: clients, retry policy, clock, progress, endpoint kind.

    Every field is optional; None means the default. Derive changed copies with
    :meth:`with_options`; make one the default for calls that pass no ``session=`` with
    :func:`set_default_session`.

    Attributes:
        client: the sync client (default: ``openai.OpenAI()`` from ``OPENAI_*``, on first use).
        async_client: the async client (default: ``openai.AsyncOpenAI()``, one per event loop).
        retry: the retry policy (default :data:`~finetune_kit.RetryPolicy` defaults).
        clock: where time is read and waits happen, "today" included (default: the system).
        progress: whether progress bars show (default True).
        endpoint: whose facts apply - ``"openai"``, ``"azure"`` or ``"other"`` - when the
            client's URL does not say it (default: told from the client).
    """

    client: openai.OpenAI | None = None
    async_client: openai.AsyncOpenAI | None = None
    retry: RetryPolicy | None = None
    clock: Clock | None = None
    progress: bool | None = None
    endpoint: EndpointKind | None = None

    def __post_init__(self) -> None:
        # Checked when the session is built, so a wrong argument fails here, not at first use.
        _check_type("client", self.client, openai.OpenAI)
        _check_type("async_client", self.async_client, openai.AsyncOpenAI)
        _check_type("retry", self.retry, RetryPolicy)
        _check_type("progress", self.progress, bool)
        clock: object = self.clock
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError("clock must be callable and have sleep() and asleep() (see Clock)")
        if self.endpoint is not None:
            check_endpoint_kind(self.endpoint)

    def __repr__(self) -> str:
        # Clients are shown by class and URL only: their repr could carry headers.
        values = ((field.name, getattr(self, field.name)) for field in dataclasses.fields(self))
        parts = [f"{name}={_describe(value)}" for name, value in values if value is not None]
        return f"Session({', '.join(parts)})"

    def with_options(self, **changes: Unpack[SessionChanges]) -> Session:
        """A copy with the given fields changed (None sets a field back to its default).

        Raises:
            TypeError: a keyword that is none of the fields, or a wrong type.
            ValueError: a wrong value.
        """
        return changed(self, "Session.with_options()", changes)


class SessionChanges(TypedDict, total=False):
    """The keywords of :meth:`Session.with_options`: its fields, each described there."""

    client: openai.OpenAI | None
    async_client: openai.AsyncOpenAI | None
    retry: RetryPolicy | None
    clock: Clock | None
    progress: bool | None
    endpoint: EndpointKind | None


def _check_type(name: str, value: object, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__} (or None), not {type(value).__name__}")


def _describe(value: object) -> str:
    if isinstance(value, (openai.OpenAI, openai.AsyncOpenAI)):
        return f"<{type(value).__name__} {value.base_url}>"
    return repr(value)


_lock = threading.Lock()
_default_session = Session()
_default_client: openai.OpenAI | None = None
_default_async_client: openai.AsyncOpenAI | None = None
_default_async_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
    weakref.WeakKeyDictionary()
)


def default_session() -> Session:
    """The session used by calls that pass none."""
    return _default_session


def set_default_session(session: Session | None) -> Session:
    """Make ``session`` the default (None: back to ``Session()``); returns the previous one."""
    global _default_session
    if session is not None and not isinstance(session, Session):
        raise TypeError(f"session must be a Session, not {type(session).__name__}")
    with _lock:
        previous, _default_session = _default_session, session or Session()
    return previous


def _env_client() -> openai.OpenAI:
    global _default_client
    with _lock:
        if _default_client is None:
            _default_client = openai.OpenAI()
        return _default_client


def _env_async_client() -> openai.AsyncOpenAI:
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


def _reset_env_clients() -> None:
    """Forget the clients built from the environment (tests; after changing ``OPENAI_*``)."""
    global _default_client, _default_async_client
    with _lock:
        _default_client = None
        _default_async_client = None
        _default_async_by_loop.clear()


def endpoint_of(
    client: openai.OpenAI | openai.AsyncOpenAI, *, endpoint: EndpointKind | None = None
) -> EndpointKind:
    """Whose facts apply to ``client``: ``endpoint`` when given, else told from the client.

    ``openai.AzureOpenAI`` / ``AsyncAzureOpenAI`` and base URLs on ``*.openai.azure.com`` or
    ``*.services.ai.azure.com`` are Azure; ``api.openai.com`` is OpenAI; anything else
    (another OpenAI-compatible server, the local backend) is ``"other"``.
    """
    if endpoint is not None:
        return check_endpoint_kind(endpoint)
    if isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        return "azure"
    return endpoint_kind_of_url(str(client.base_url))


_OPENAI_URL: Final = "https://api.openai.com/v1"
_CLOCKED_LIMIT: Final = 64
_clocked: dict[tuple[RetryPolicy, object], RetryPolicy] = {}


def facts_for(
    where: openai.OpenAI | openai.AsyncOpenAI | Session | EndpointKind | None,
    model: str,
    *,
    base_model: str | None = None,
    table: FactsTable | None = None,
) -> ModelFacts:
    """The facts of ``model`` on the endpoint ``where`` stands for.

    Args:
        where: a client (its endpoint is told from it), a session (its ``endpoint``, else its
            client's), an endpoint kind, or None for the default session.
        model: any model name (see :func:`~finetune_kit.facts._models.model_facts`).
        base_model: the base of a name that says nothing (an Azure deployment name).
        table: the user's own facts table instead of the endpoint's built-in one.
    """
    kind: EndpointKind
    if isinstance(where, (openai.OpenAI, openai.AsyncOpenAI)):
        kind = endpoint_of(where)
    elif isinstance(where, str):
        kind = check_endpoint_kind(where)
    else:
        session = where if where is not None else default_session()
        client = session.client or session.async_client
        if session.endpoint is not None:
            kind = session.endpoint
        elif client is not None:
            kind = endpoint_of(client)
        else:  # the client the environment would build, without building it (no key needed)
            kind = endpoint_kind_of_url(os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL)
    return model_facts(model, endpoint=kind, table=table, base_model=base_model)


def policy_with_clock(retry: RetryPolicy, clock: Clock) -> RetryPolicy:
    """``retry`` with the clock's waits filled in where the policy sets none of its own.

    Remembered: every request resolves its policy, and the pair rarely changes in a process.
    """
    key: tuple[RetryPolicy, object] = (retry, clock)
    try:
        remembered = _clocked.get(key)
    except TypeError:  # an unhashable clock: never remembered
        return _with_clock(retry, clock)
    if remembered is not None:
        return remembered
    clocked = _with_clock(retry, clock)
    if len(_clocked) >= _CLOCKED_LIMIT:
        _clocked.clear()  # memory stays flat with many short-lived policies or clocks
    _clocked[key] = clocked
    return clocked


def _with_clock(retry: RetryPolicy, clock: Clock) -> RetryPolicy:
    return retry.copy(
        sleep=retry.sleep or clock.sleep,
        async_sleep=retry.async_sleep or clock.asleep,
        clock=retry.clock or elapsed_timer(clock),
    )


C = TypeVar("C", openai.OpenAI, openai.AsyncOpenAI)


@dataclass(frozen=True)
class Bound(Generic[C]):
    """What a call uses, resolved from its arguments, its session and the defaults.

    ``Bound[openai.OpenAI]`` for a sync call (from :func:`bind`), :data:`AsyncBound` for an
    async one (from :func:`abind`).

    Attributes:
        client: the client to send with, its own retries off (``max_retries=0``).
        retry: the retry policy, its waits on ``clock`` unless it sets its own.
        clock: where time is read ("today" included).
        progress: whether to show progress bars.
        endpoint: whose facts apply (``"openai"``, ``"azure"`` or ``"other"``).
    """

    client: C
    retry: RetryPolicy
    clock: Clock
    progress: bool
    endpoint: EndpointKind


AsyncBound: TypeAlias = Bound[openai.AsyncOpenAI]
"""What an async call uses (see :class:`Bound`)."""


class BindKwargs(TypedDict, total=False):
    """What :func:`bind` and :func:`abind` take besides the session and the client.

    Each one passed (and not None) wins over the session's; see :class:`Session`.
    """

    retry: RetryPolicy | None
    clock: Clock | None
    progress: bool | None
    endpoint: EndpointKind | None


def bind(
    session: Session | None = None,
    *,
    client: openai.OpenAI | None = None,
    **options: Unpack[BindKwargs],
) -> Bound[openai.OpenAI]:
    """Resolve a sync call's client, retry, clock, progress and endpoint.

    Per-call arguments win over ``session`` (None: the default session), which wins over the
    defaults.

    Raises:
        openai.OpenAIError: no client anywhere and the environment holds no API key.
    """
    chosen = session if session is not None else default_session()
    return _bound(chosen, client or chosen.client or _env_client(), options)


def abind(
    session: Session | None = None,
    *,
    client: openai.AsyncOpenAI | None = None,
    **options: Unpack[BindKwargs],
) -> AsyncBound:
    """The async sibling of :func:`bind`."""
    chosen = session if session is not None else default_session()
    return _bound(chosen, client or chosen.async_client or _env_async_client(), options)


def _bound(chosen: Session, raw: C, options: BindKwargs) -> Bound[C]:
    clock = options.get("clock") or chosen.clock or SYSTEM_CLOCK
    progress = options.get("progress")
    shown = progress if progress is not None else chosen.progress
    return Bound(
        client=raw.with_options(max_retries=0),
        retry=policy_with_clock(options.get("retry") or chosen.retry or DEFAULT_RETRY, clock),
        clock=clock,
        progress=True if shown is None else shown,
        endpoint=endpoint_of(raw, endpoint=options.get("endpoint") or chosen.endpoint),
    )
