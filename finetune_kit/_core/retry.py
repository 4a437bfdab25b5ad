"""The one retry layer: a frozen :class:`RetryPolicy`, one pure decision, two thin loops.

This is the only module that imports tenacity, and only when a call is first retried. Every
request finetune_kit makes runs through :func:`call_with_retry` (or :func:`acall_with_retry`)
on a client whose own retries are off (see ``_client.py``), so attempts never multiply.

What is retried: connection errors and timeouts, HTTP 408, 409, 429 and 5xx; an explicit
``x-should-retry: true|false`` header from the service overrides the status code. Never
retried: 400, 401, 403, 404, 422, and a 429 whose error code says waiting cannot help
(``insufficient_quota``, ``daily_rate_limit_exceeded``) - those raise at once.

How long to wait: the service's ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP
date); otherwise exponential backoff from ``initial_wait`` with jitter, capped at ``max_wait``.
A service-requested wait longer than ``max_wait`` is not shortened (a shorter wait would only
burn an attempt on another refusal): the call gives up at once instead. Nothing waits past
``total_timeout``.

When the layer gives up, the SDK's exception reaches the caller unchanged (on Python 3.11+ with
a note saying why it was not retried).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import openai

from .._exceptions import DeploymentError
from .keywords import changed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    import tenacity
    from typing_extensions import Unpack

    from .clock import Clock

__all__ = [
    "DEFAULT_RETRY",
    "FAIL_FAST_CODES",
    "Decision",
    "RetryChanges",
    "RetryPolicy",
    "acall_with_retry",
    "call_with_retry",
    "decide",
    "is_ambiguous",
    "server_wait",
]

T = TypeVar("T")

logger = logging.getLogger("finetune_kit")

#: 429 error codes for which waiting cannot help: retrying only spends more of the caller's time.
FAIL_FAST_CODES = frozenset({"insufficient_quota", "daily_rate_limit_exceeded"})

_RETRIED_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How finetune_kit retries a request; pass one per call as ``retry=``.

    Attributes:
        max_attempts: attempts in all, the first one included (1 = never retry).
        initial_wait: seconds before the first retry when the service gives no hint; doubles
            with each further retry.
        max_wait: cap on any single wait, in seconds.
        total_timeout: cap on the whole call, waits included, in seconds (None = no cap).
        jitter: fraction (0..1) by which a backoff wait is randomly shortened, so that many
            clients do not retry in lock step. Service-requested waits are never jittered.
        sleep: replaces the session clock's ``sleep`` for this policy (kept for compatibility:
            prefer ``Session(clock=...)``, the one place for time).
        async_sleep: replaces the session clock's ``asleep`` for the async calls.
        clock: replaces the session clock (``time.monotonic`` for the system clock) for
            measuring ``total_timeout``.
    """

    max_attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0
    total_timeout: float | None = 300.0
    jitter: float = 0.25
    sleep: Callable[[float], None] | None = None
    async_sleep: Callable[[float], Awaitable[None]] | None = None
    clock: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        # Checked here, not at the first retry: a bad value would otherwise surface only when
        # a request fails, hiding the real error behind a TypeError from deep in the loop.
        if type(self.max_attempts) is not int:  # not a bool, not 2.5 (which acted as 3)
            raise TypeError(f"max_attempts must be an int, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        for name in ("initial_wait", "max_wait"):
            if _number(name, getattr(self, name)) < 0:
                raise ValueError(f"{name} cannot be negative ({getattr(self, name)!r})")
        if not 0 <= _number("jitter", self.jitter) <= 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, not {self.jitter!r}")
        if self.total_timeout is not None and _number("total_timeout", self.total_timeout) <= 0:
            raise ValueError(
                f"total_timeout must be positive (or None for no cap), not {self.total_timeout!r}"
            )
        for name in ("sleep", "async_sleep", "clock"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable (or None), not {value!r}")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt, for callers handling errors themselves."""
        return cls(max_attempts=1)

    def copy(self, **changes: Unpack[RetryChanges]) -> RetryPolicy:
        """A copy with the given fields changed; fields not passed keep their value.

        ``copy(total_timeout=None)`` removes the cap.

        Raises:
            TypeError: a keyword that is none of the fields, or a wrong type.
            ValueError: a wrong value.
        """
        return changed(self, "RetryPolicy.copy()", changes)


class RetryChanges(TypedDict, total=False):
    """The keywords of :meth:`RetryPolicy.copy`: its fields, each described there."""

    max_attempts: int
    initial_wait: float
    max_wait: float
    total_timeout: float | None
    jitter: float
    sleep: Callable[[float], None] | None
    async_sleep: Callable[[float], Awaitable[None]] | None
    clock: Callable[[], float] | None


def _number(name: str, value: object) -> float:
    """``value`` as a finite real number, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return float(value)


#: The policy used when a call gets ``retry=None``.
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: retry after ``wait`` seconds, or give up."""

    retry: bool
    wait: float
    reason: str
    """Why, in words, for the log (e.g. ``"HTTP 429 rate_limit_exceeded"``)."""


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if headers is None:
        return None
    return headers.get(name)


def server_wait(headers: Mapping[str, str] | None, *, now: float) -> float | None:
    """The wait the service asked for, in seconds, or None when it asked for none.

    Reads ``retry-after-ms``, then ``retry-after`` as seconds, then ``retry-after`` as an HTTP
    date (relative to ``now``, a UNIX timestamp). Malformed or negative values count as absent.
    """
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = _header(headers, name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        return None
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _status_reason(exc: openai.APIStatusError) -> str:
    code = f" {exc.code}" if exc.code else ""
    return f"HTTP {exc.status_code}{code}"


def _classify(exc: BaseException) -> tuple[bool, str]:
    """Whether ``exc`` is worth another attempt at all, and why (ignoring attempt budgets)."""
    if isinstance(exc, openai.APITimeoutError):
        return True, "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return True, "connection error"
    if isinstance(exc, DeploymentError):  # the Azure control plane, same rules
        return _classify_control_plane(exc)
    if not isinstance(exc, openai.APIStatusError):
        return False, f"{type(exc).__name__} is not a transient error"
    reason = _status_reason(exc)
    if exc.status_code == 429 and exc.code in FAIL_FAST_CODES:
        return False, f"{reason}: waiting cannot help"
    should_retry = _header(exc.response.headers, "x-should-retry")
    if should_retry == "true":
        return True, f"{reason} (x-should-retry: true)"
    if should_retry == "false":
        return False, f"{reason} (x-should-retry: false)"
    if exc.status_code in _RETRIED_STATUSES or exc.status_code >= 500:
        return True, reason
    return False, f"{reason} is not retried"


def _classify_control_plane(exc: DeploymentError) -> tuple[bool, str]:
    if exc.status_code is None:  # no reply: a connection error or a read timeout
        return True, "connection error"
    reason = f"HTTP {exc.status_code}{f' {exc.code}' if exc.code else ''}"
    if "quota" in (exc.code or "").lower():  # ARM's InsufficientQuota (409): waiting cannot help
        return False, f"{reason}: waiting cannot help"
    if exc.status_code in _RETRIED_STATUSES or exc.status_code >= 500:
        return True, reason
    return False, f"{reason} is not retried"


def is_ambiguous(exc: BaseException) -> bool:
    """True when a failed request may still have taken effect on the service.

    A timeout, a dropped connection or a 5xx can happen after the service acted (created the
    job, stored the file); a 4xx, including 429, means it refused. Retries of non-idempotent
    calls look for the effect first when this is true.
    """
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, DeploymentError):
        return exc.ambiguous or (exc.status_code or 0) >= 500
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def decide(
    policy: RetryPolicy,
    exc: BaseException,
    *,
    attempt: int,
    elapsed: float,
    now: float,
    rand: float,
) -> Decision:
    """The whole retry logic, pure: should attempt ``attempt``'s failure be retried, and when.

    Args:
        policy: the caller's policy.
        exc: what the attempt raised.
        attempt: the number of the attempt that failed, from 1.
        elapsed: seconds since the first attempt started.
        now: the current UNIX time (for ``retry-after`` HTTP dates).
        rand: a number in [0, 1) that drives the jitter.
    """
    retryable, reason = _classify(exc)
    if not retryable:
        return Decision(False, 0.0, reason)
    if attempt >= policy.max_attempts:
        return Decision(False, 0.0, f"{reason}; all {policy.max_attempts} attempts used")
    headers: Mapping[str, str] | None = None
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
    elif isinstance(exc, DeploymentError):
        headers = exc.headers
    asked = server_wait(headers, now=now)
    if asked is not None:
        if asked > policy.max_wait:
            return Decision(
                False,
                0.0,
                f"{reason}; the service asks to wait {asked:.1f}s, more than max_wait "
                f"{policy.max_wait:.1f}s",
            )
        wait = asked
    else:
        backoff = policy.initial_wait * 2.0 ** min(attempt - 1, 60)
        wait = min(backoff, policy.max_wait) * (1.0 - policy.jitter * rand)
    if policy.total_timeout is not None and elapsed + wait > policy.total_timeout:
        return Decision(
            False,
            0.0,
            f"{reason}; waiting {wait:.1f}s more would pass total_timeout "
            f"{policy.total_timeout:.1f}s",
        )
    return Decision(True, wait, reason)


class _Attempts:
    """Per-call bookkeeping that adapts :func:`decide` to tenacity's callbacks."""

    def __init__(self, policy: RetryPolicy, description: str, wall: Clock | None) -> None:
        self.policy = policy
        self.description = description
        self.wall: Callable[[], float] = wall or time.time
        self.clock = policy.clock or time.monotonic
        self.started = self.clock()
        self.decision = Decision(False, 0.0, "")
        # Attempts made before tenacity took over (the fast path's first one).
        self.offset = 0

    def tenacity_options(self) -> dict[str, Any]:
        """What tenacity's ``Retrying`` and ``AsyncRetrying`` are built with, but the sleep."""
        return {
            "retry": self.retry,
            "wait": self.wait,
            "before_sleep": self.before_sleep,
            "reraise": True,
        }

    def first_failed(self, exc: BaseException) -> bool:
        """After the fast path's first attempt raised ``exc``: retry it (and log why)?"""
        if not self._decide(exc, 1):
            return False
        self._log_retry(exc, 1)
        self.offset = 1
        return True

    def _decide(self, exc: BaseException, attempt: int) -> bool:
        self.decision = decide(
            self.policy,
            exc,
            attempt=attempt,
            elapsed=self.clock() - self.started,
            now=self.wall(),
            rand=random.random(),
        )
        if not self.decision.retry:
            self._give_up(exc, attempt)
        return self.decision.retry

    def retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if exc is None:  # pragma: no cover - a failed outcome always holds an exception
            return False
        return self._decide(exc, state.attempt_number + self.offset)

    def wait(self, state: tenacity.RetryCallState) -> float:
        del state  # the decision made in retry() already holds the wait
        return self.decision.wait

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self._log_retry(exc, state.attempt_number + self.offset)

    def _log_retry(self, exc: BaseException | None, attempt: int) -> None:
        logger.warning(
            "%s failed (%s%s); retry %d of %d in %.2fs",
            self.description,
            self.decision.reason,
            _request_id_suffix(exc),
            attempt,
            self.policy.max_attempts - 1,
            self.decision.wait,
        )

    def _give_up(self, exc: BaseException, attempt: int) -> None:
        if not isinstance(exc, openai.APIError):
            return  # not a service error (e.g. our own): retries have nothing to say about it
        retryable, _ = _classify(exc)
        fail_fast = isinstance(exc, openai.RateLimitError) and exc.code in FAIL_FAST_CODES
        worth_saying = retryable or fail_fast
        logger.log(
            logging.WARNING if worth_saying else logging.DEBUG,
            "%s failed after %d attempt%s, not retried: %s%s",
            self.description,
            attempt,
            "" if attempt == 1 else "s",
            self.decision.reason,
            _request_id_suffix(exc),
        )
        if worth_saying and sys.version_info >= (3, 11):
            exc.add_note(f"finetune_kit: {self.description}: not retried: {self.decision.reason}")


def _request_id_suffix(exc: BaseException | None) -> str:
    if isinstance(exc, openai.APIStatusError) and exc.request_id:
        return f", request id {exc.request_id}"
    return ""


def call_with_retry(
    policy: RetryPolicy | None,
    fn: Callable[[], T],
    *,
    description: str,
    clock: Clock | None = None,
) -> T:
    """Call ``fn`` under ``policy`` (None = :data:`DEFAULT_RETRY`) and return its result.

    Args:
        policy: how to retry.
        fn: the request, taking no arguments.
        description: names the operation in log messages (e.g. ``"create fine-tuning job"``).
        clock: the wall clock ``Retry-After`` dates are measured against (default: system).

    Raises:
        Exception: whatever ``fn`` raised last, unchanged, once retrying stops.
    """
    attempts = _Attempts(policy or DEFAULT_RETRY, description, clock)
    sleep = attempts.policy.sleep or time.sleep
    # Fast path: most calls succeed the first time, and building tenacity's machinery costs
    # more CPU than the rest of a cheap call; tenacity takes over from the second attempt.
    try:
        return fn()
    except Exception as exc:
        if not attempts.first_failed(exc):
            raise
    sleep(attempts.decision.wait)
    # Imported here, not at the top: tenacity imports tornado whenever it is installed (Jupyter
    # installs it), which would slow `import finetune_kit` for calls that never retry.
    import tenacity

    retrying = tenacity.Retrying(sleep=sleep, **attempts.tenacity_options())
    return retrying(fn)


async def acall_with_retry(
    policy: RetryPolicy | None,
    fn: Callable[[], Awaitable[T]],
    *,
    description: str,
    clock: Clock | None = None,
) -> T:
    """The async sibling of :func:`call_with_retry` (``fn`` returns an awaitable)."""
    attempts = _Attempts(policy or DEFAULT_RETRY, description, clock)
    sleep = attempts.policy.async_sleep or asyncio.sleep
    try:  # the fast path, as in call_with_retry
        return await fn()
    except Exception as exc:
        if not attempts.first_failed(exc):
            raise
    await sleep(attempts.decision.wait)
    import tenacity  # lazily, as in call_with_retry

    retrying = tenacity.AsyncRetrying(sleep=sleep, **attempts.tenacity_options())

    async def attempt() -> T:
        # tenacity tells sync from async callables by inspection; a lambda returning a
        # coroutine would look sync, so hand it a real coroutine function.
        return await fn()

    return await retrying(attempt)
