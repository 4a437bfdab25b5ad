from __future__ import annotations

import asyncio
import email.utils
import logging
import sys
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from finetune_kit import RetryPolicy
from finetune_kit._core.client import resolve_async_client, resolve_client
from finetune_kit._core.retry import (
    DEFAULT_RETRY,
    Decision,
    acall_with_retry,
    call_with_retry,
    decide,
    is_ambiguous,
    server_wait,
)

from .fake_openai import Sleeps, connection_error, status_error, timeout_error

if TYPE_CHECKING:
    import respx

NOW = 1_800_000_000.0


def _decide(
    exc: BaseException, *, attempt: int = 1, elapsed: float = 0.0, rand: float = 0.0
) -> Decision:
    return decide(DEFAULT_RETRY, exc, attempt=attempt, elapsed=elapsed, now=NOW, rand=rand)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    decision = _decide(status_error(status))
    assert decision.retry
    assert decision.wait == DEFAULT_RETRY.initial_wait
    assert f"HTTP {status}" in decision.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    assert not _decide(status_error(status)).retry


def test_connection_errors_and_timeouts_are_retried() -> None:
    assert _decide(connection_error()).reason == "connection error"
    assert _decide(timeout_error()).reason == "timeout"
    assert _decide(connection_error()).retry


def test_other_exceptions_are_not_retried() -> None:
    assert not _decide(ValueError("bad")).retry


@pytest.mark.parametrize("code", ["insufficient_quota", "daily_rate_limit_exceeded"])
def test_hopeless_rate_limits_fail_fast(code: str) -> None:
    decision = _decide(status_error(429, code=code, headers={"x-should-retry": "true"}))
    assert not decision.retry
    assert code in decision.reason
    assert "waiting cannot help" in decision.reason


def test_x_should_retry_header_overrides_status() -> None:
    assert _decide(status_error(400, headers={"x-should-retry": "true"})).retry
    assert not _decide(status_error(503, headers={"x-should-retry": "false"})).retry


def test_exponential_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=5.0, max_attempts=10, jitter=0.0)
    waits = [
        decide(policy, status_error(500), attempt=n, elapsed=0, now=NOW, rand=0.5).wait
        for n in range(1, 6)
    ]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_only_shortens_backoff() -> None:
    policy = RetryPolicy(initial_wait=2.0, jitter=0.5)
    wait = decide(policy, status_error(500), attempt=1, elapsed=0, now=NOW, rand=0.5).wait
    assert wait == pytest.approx(1.5)


def test_server_wait_headers_in_order_of_preference() -> None:
    assert server_wait({"retry-after-ms": "1500", "retry-after": "9"}, now=NOW) == 1.5
    assert server_wait({"retry-after": "2.5"}, now=NOW) == 2.5
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert server_wait({"retry-after": date}, now=NOW) == pytest.approx(7)
    assert server_wait({"retry-after": "not a date"}, now=NOW) is None
    assert server_wait({"retry-after": "-3"}, now=NOW) is None
    assert server_wait({}, now=NOW) is None
    assert server_wait(None, now=NOW) is None


def test_retry_after_is_honoured_without_jitter() -> None:
    exc = status_error(429, headers={"retry-after": "3"})
    assert _decide(exc, rand=0.99).wait == 3.0


def test_retry_after_beyond_max_wait_gives_up_at_once() -> None:
    exc = status_error(429, headers={"retry-after": "600"})
    decision = _decide(exc)
    assert not decision.retry
    assert "more than max_wait" in decision.reason


def test_attempt_budget_and_total_timeout() -> None:
    policy = RetryPolicy(max_attempts=3, total_timeout=10.0, jitter=0.0, initial_wait=4.0)
    exc = status_error(500)
    assert decide(policy, exc, attempt=2, elapsed=0, now=NOW, rand=0).retry
    exhausted = decide(policy, exc, attempt=3, elapsed=0, now=NOW, rand=0)
    assert not exhausted.retry
    assert "all 3 attempts used" in exhausted.reason
    late = decide(policy, exc, attempt=1, elapsed=7.0, now=NOW, rand=0)
    assert not late.retry
    assert "total_timeout" in late.reason


def test_ambiguous_failures() -> None:
    assert is_ambiguous(connection_error())
    assert is_ambiguous(timeout_error())
    assert is_ambiguous(status_error(502))
    assert not is_ambiguous(status_error(429))
    assert not is_ambiguous(status_error(400))
    assert not is_ambiguous(ValueError())


def test_policy_validation_copy_and_none() -> None:
    assert RetryPolicy.none().max_attempts == 1
    policy = RetryPolicy(max_wait=3.0)
    changed = policy.copy(max_attempts=2, total_timeout=None)
    assert (changed.max_attempts, changed.max_wait, changed.total_timeout) == (2, 3.0, None)
    assert policy.copy().total_timeout == 300.0
    with pytest.raises(TypeError, match=r"RetryPolicy\.copy\(\) got an unexpected keyword"):
        policy.copy(max_attemps=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_wait=-1)
    with pytest.raises(ValueError, match="total_timeout"):
        RetryPolicy(total_timeout=0)


class _Flaky:
    """Raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def acall(self) -> str:
        return self()


def _policy(
    sleeps: Sleeps,
    *,
    max_attempts: int = 6,
    initial_wait: float = 0.5,
    total_timeout: float | None = 300.0,
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts,
        initial_wait=initial_wait,
        total_timeout=total_timeout,
        jitter=0.0,
        sleep=sleeps.sleep,
        async_sleep=sleeps.async_sleep,
        clock=sleeps.clock,
    )


def test_call_with_retry_waits_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    sleeps = Sleeps()
    flaky = _Flaky(status_error(503, request_id="req_abc"), connection_error())
    with caplog.at_level(logging.INFO, logger="finetune_kit"):
        assert call_with_retry(_policy(sleeps), flaky, description="list jobs") == "ok"
    assert flaky.calls == 3
    assert sleeps.waits == [0.5, 1.0]
    first = caplog.records[0].getMessage()
    assert "list jobs" in first
    assert "HTTP 503" in first
    assert "req_abc" in first
    assert "retry 1 of 5" in first
    assert "connection error" in caplog.records[1].getMessage()


def test_exhausted_retries_reraise_the_sdk_exception_unchanged() -> None:
    sleeps = Sleeps()
    errors = [status_error(500) for _ in range(3)]
    flaky = _Flaky(*errors)
    with pytest.raises(openai.InternalServerError) as info:
        call_with_retry(_policy(sleeps, max_attempts=3), flaky, description="x")
    assert info.value is errors[-1]
    assert flaky.calls == 3
    assert len(sleeps.waits) == 2
    if sys.version_info >= (3, 11):
        assert any("all 3 attempts used" in note for note in info.value.__notes__)


def test_quota_exhaustion_raises_at_once_with_reason(caplog: pytest.LogCaptureFixture) -> None:
    sleeps = Sleeps()
    error = status_error(429, code="insufficient_quota", request_id="req_q")
    flaky = _Flaky(error)
    with (
        caplog.at_level(logging.WARNING, logger="finetune_kit"),
        pytest.raises(openai.RateLimitError) as info,
    ):
        call_with_retry(_policy(sleeps), flaky, description="create job")
    assert info.value is error
    assert info.value.code == "insufficient_quota"
    assert flaky.calls == 1
    assert sleeps.waits == []
    assert "waiting cannot help" in caplog.text
    assert "req_q" in caplog.text


def test_non_sdk_exceptions_pass_straight_through() -> None:
    flaky = _Flaky(KeyError("x"))
    with pytest.raises(KeyError):
        call_with_retry(_policy(Sleeps()), flaky, description="x")
    assert flaky.calls == 1


def test_total_timeout_counts_injected_sleeps() -> None:
    sleeps = Sleeps()
    flaky = _Flaky(*[status_error(500) for _ in range(10)])
    policy = _policy(sleeps, max_attempts=10, initial_wait=1.0, total_timeout=6.0)
    with pytest.raises(openai.InternalServerError):
        call_with_retry(policy, flaky, description="x")
    assert sleeps.waits == [1.0, 2.0]  # a further 4s would end past 6s
    assert flaky.calls == 3


async def test_async_loop_shares_the_decisions() -> None:
    sleeps = Sleeps()
    flaky = _Flaky(status_error(429, headers={"retry-after-ms": "250"}), timeout_error())
    result = await acall_with_retry(_policy(sleeps), flaky.acall, description="x")
    assert result == "ok"
    assert sleeps.waits == [0.25, 1.0]


async def test_async_exhaustion_reraises_unchanged() -> None:
    error = status_error(403)
    flaky = _Flaky(error)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await acall_with_retry(_policy(Sleeps()), flaky.acall, description="x")
    assert info.value is error


def test_retry_policy_none_makes_one_attempt() -> None:
    flaky = _Flaky(status_error(500))
    with pytest.raises(openai.InternalServerError):
        call_with_retry(RetryPolicy.none(), flaky, description="x")
    assert flaky.calls == 1


# --- wiring: the SDK's own retries are off, ours count the attempts ----------------------


def test_resolved_client_does_not_retry_by_itself(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.get("/models/gpt-4o").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "1"}, json={"error": {"code": None}}),
            httpx.Response(500, json={"error": {"message": "oops"}}),
            httpx.Response(
                200, json={"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "x"}
            ),
        ]
    )
    sleeps = Sleeps()
    resolved = resolve_client(client)
    assert resolved.max_retries == 0
    model = call_with_retry(
        _policy(sleeps), lambda: resolved.models.retrieve("gpt-4o"), description="get model"
    )
    assert model.id == "gpt-4o"
    assert route.call_count == 3
    assert sleeps.waits == [1.0, 1.0]


async def test_resolved_async_client_does_not_retry_by_itself(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    route = api.get("/models/gpt-4o").mock(return_value=httpx.Response(503, json={"error": {}}))
    resolved = resolve_async_client(async_client)
    sleeps = Sleeps()
    with pytest.raises(openai.InternalServerError):
        await acall_with_retry(
            _policy(sleeps, max_attempts=2),
            lambda: resolved.models.retrieve("gpt-4o"),
            description="get model",
        )
    assert route.call_count == 2


def test_default_clients_come_from_the_environment_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from finetune_kit._core import client as _client
    from finetune_kit._core import session as _session

    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://env.test/v1")
    _client._reset_defaults()
    try:
        sync, again = resolve_client(None), resolve_client(None)
        aio = resolve_async_client(None)
        assert str(sync.base_url) == "https://env.test/v1/"
        assert str(aio.base_url) == "https://env.test/v1/"
        assert sync.max_retries == aio.max_retries == 0
        assert sync.api_key == again.api_key == "sk-env-key"
        assert _session._default_client is not None  # one per process, reused
    finally:
        _client._reset_defaults()


def test_azure_and_custom_base_urls_keep_their_class_and_endpoint() -> None:
    azure = openai.AzureOpenAI(
        api_key="k", azure_endpoint="https://x.openai.azure.com", api_version="2025-04-01-preview"
    )
    resolved = resolve_client(azure)
    assert isinstance(resolved, openai.AzureOpenAI)
    assert resolved.max_retries == 0
    assert str(resolved.base_url).startswith("https://x.openai.azure.com/openai")
    assert azure.max_retries == 2  # the caller's client is left as it was
    local = resolve_client(openai.OpenAI(api_key="k", base_url="http://127.0.0.1:8765/v1"))
    assert str(local.base_url) == "http://127.0.0.1:8765/v1/"


def test_default_async_client_is_one_per_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_kit._core import client as _client
    from finetune_kit._core import session as _session

    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    _client._reset_defaults()

    async def defaults() -> tuple[openai.AsyncOpenAI, openai.AsyncOpenAI]:
        return _session._env_async_client(), _session._env_async_client()

    try:
        first, same = asyncio.run(defaults())
        second, _ = asyncio.run(defaults())
        assert first is same
        assert second is not first  # a new loop gets its own connection pool
        assert _session._env_async_client() is _session._env_async_client()  # outside a loop
    finally:
        _client._reset_defaults()


@pytest.mark.parametrize("is_async", [False, True])
def test_first_attempt_fast_path_keeps_budget_waits_and_log_numbering(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The first attempt runs without tenacity; the budget, the waits and the numbering in
    # the logs must be the same as if tenacity had run every attempt.
    waits: list[float] = []
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise connection_error()

    async def afail() -> None:
        fail()

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(max_attempts=3, jitter=0.0, sleep=waits.append, async_sleep=asleep)
    caplog.set_level(logging.WARNING, logger="finetune_kit")

    def run() -> None:
        if is_async:
            asyncio.run(acall_with_retry(policy, afail, description="op"))
        else:
            call_with_retry(policy, fail, description="op")

    with pytest.raises(openai.APIConnectionError):
        run()
    assert len(calls) == 3
    assert waits == [0.5, 1.0]
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "retry" in m and "of 2" in m] == [
        "op failed (connection error); retry 1 of 2 in 0.50s",
        "op failed (connection error); retry 2 of 2 in 1.00s",
    ]
    assert messages[-1].startswith("op failed after 3 attempts")


# --- the policy's arguments are checked when it is built, not at the first retry ----------


async def _no_wait(seconds: float) -> None:
    del seconds


@pytest.mark.parametrize(
    ("fields", "error", "names"),
    [
        ({"max_attempts": 2.5}, TypeError, "max_attempts"),
        ({"max_attempts": True}, TypeError, "max_attempts"),
        ({"max_attempts": "3"}, TypeError, "max_attempts"),
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"initial_wait": float("nan")}, ValueError, "initial_wait"),
        ({"initial_wait": float("inf")}, ValueError, "initial_wait"),
        ({"initial_wait": -1}, ValueError, "initial_wait"),
        ({"initial_wait": "1"}, TypeError, "initial_wait"),
        ({"initial_wait": False}, TypeError, "initial_wait"),
        ({"max_wait": float("nan")}, ValueError, "max_wait"),
        ({"max_wait": float("inf")}, ValueError, "max_wait"),
        ({"max_wait": -0.5}, ValueError, "max_wait"),
        ({"max_wait": None}, TypeError, "max_wait"),
        ({"total_timeout": float("nan")}, ValueError, "total_timeout"),
        ({"total_timeout": float("inf")}, ValueError, "total_timeout"),
        ({"total_timeout": 0}, ValueError, "total_timeout"),
        ({"total_timeout": -5.0}, ValueError, "total_timeout"),
        ({"total_timeout": True}, TypeError, "total_timeout"),
        ({"jitter": float("nan")}, ValueError, "jitter"),
        ({"jitter": 1.5}, ValueError, "jitter"),
        ({"jitter": -0.1}, ValueError, "jitter"),
        ({"jitter": "0.1"}, TypeError, "jitter"),
        ({"sleep": "nope"}, TypeError, "sleep"),
        ({"async_sleep": 1.0}, TypeError, "async_sleep"),
        ({"clock": 0}, TypeError, "clock"),
    ],
)
def test_policy_rejects_bad_arguments_when_built(
    fields: dict[str, object], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=rf"^{names}\b"):
        RetryPolicy(**fields)  # type: ignore[arg-type]
    # copy() checks the same way: a bad value never waits for a failure to surface.
    with pytest.raises(error, match=rf"^{names}\b"):
        RetryPolicy().copy(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts": 1},
        {"initial_wait": 0, "max_wait": 0},
        {"initial_wait": 2, "max_wait": 60},  # ints are seconds too
        {"total_timeout": None},
        {"jitter": 0.0},
        {"jitter": 1},
        {"sleep": lambda _: None, "async_sleep": _no_wait, "clock": lambda: 0.0},
    ],
)
def test_policy_accepts_good_arguments(fields: dict[str, object]) -> None:
    policy = RetryPolicy(**fields)  # type: ignore[arg-type]
    for name, value in fields.items():
        assert getattr(policy, name) == value


def test_retry_after_dates_are_read_on_the_injected_clock() -> None:
    # A Retry-After HTTP date is measured against the clock's wall time, not the machine's.
    from finetune_kit.local import ManualClock

    clock = ManualClock(start=NOW)
    sleeps = Sleeps()
    when = email.utils.formatdate(NOW + 7, usegmt=True)
    failures = [status_error(503, headers={"retry-after": when})]

    def flaky() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    result = call_with_retry(_policy(sleeps), flaky, description="op", clock=clock)
    assert result == "ok"
    assert sleeps.waits == [7.0]
