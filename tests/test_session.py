"""Session and Clock: an app binds client, retry, clock and progress once; time in one place."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from functools import partial
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from finetune_kit import Clock, RetryPolicy, Session, default_session, set_default_session
from finetune_kit._core.client import Request, Sleep, resolve_client, run_flow
from finetune_kit._core.clock import SYSTEM_CLOCK, elapsed_timer, utc_today
from finetune_kit._core.session import abind, bind, endpoint_of
from finetune_kit.jobs._lifecycle import _today
from finetune_kit.local import ManualClock

from .dates import DateClock, today_is
from .fake_openai import BASE_URL

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import respx

    from finetune_kit._core.client import Flow

KEY = "sk-session-secret-key"


@pytest.fixture(autouse=True)
def _restore_default() -> Iterator[None]:
    previous = default_session()
    yield
    set_default_session(previous)


def _client(url: str = "http://127.0.0.1:9/v1") -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=url)


def test_manual_clock_and_system_clock_are_clocks() -> None:
    assert isinstance(ManualClock(), Clock)
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert not isinstance(lambda: 0.0, Clock)


def test_today_is_the_utc_date_of_the_clock() -> None:
    # 23:30 UTC on 2027-01-13 is already the 14th east of Greenwich: UTC decides.
    late = dt.datetime(2027, 1, 13, 23, 30, tzinfo=dt.timezone.utc).timestamp()
    assert utc_today(ManualClock(start=late)) == dt.date(2027, 1, 13)
    assert utc_today(ManualClock(start=late + 3600)) == dt.date(2027, 1, 14)
    assert SYSTEM_CLOCK.today() == utc_today(SYSTEM_CLOCK)


def test_elapsed_time_is_monotonic_on_the_system_clock_only() -> None:
    manual = ManualClock()
    assert elapsed_timer(manual) is manual
    assert elapsed_timer(SYSTEM_CLOCK) is not SYSTEM_CLOCK


def test_lifecycle_today_reads_the_default_session_clock() -> None:
    with today_is(dt.date(2028, 6, 1)):
        assert _today() == dt.date(2028, 6, 1)
    day = dt.datetime(2026, 7, 4, tzinfo=dt.timezone.utc).timestamp()
    assert _today(clock=ManualClock(start=day)) == dt.date(2026, 7, 4)


def test_session_is_frozen_and_with_options_returns_a_changed_copy() -> None:
    client = _client()
    retry = RetryPolicy(max_attempts=2)
    session = Session(client=client, retry=retry, progress=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.progress = True  # type: ignore[misc]
    changed = session.with_options(progress=True, endpoint="azure")
    assert (changed.progress, changed.endpoint) == (True, "azure")
    assert (changed.client, changed.retry) == (client, retry)
    assert (session.progress, session.endpoint) == (False, None)
    assert session.with_options(client=None).client is None  # None: back to the default
    with pytest.raises(TypeError, match=r"Session\.with_options\(\) got an unexpected keyword"):
        session.with_options(clok=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"client": openai.AsyncOpenAI(api_key=KEY)}, TypeError),
        ({"async_client": "sk-..."}, TypeError),
        ({"retry": 3}, TypeError),
        ({"clock": lambda: 0.0}, TypeError),
        ({"progress": "yes"}, TypeError),
        ({"endpoint": "aws"}, ValueError),
    ],
)
def test_session_checks_its_fields(fields: dict[str, object], error: type[Exception]) -> None:
    name = next(iter(fields))
    with pytest.raises(error, match=name):
        Session(**fields)  # type: ignore[arg-type]


def test_session_repr_never_shows_the_key() -> None:
    session = Session(client=_client(), async_client=openai.AsyncOpenAI(api_key=KEY))
    assert KEY not in repr(session)
    assert "http://127.0.0.1:9/v1" in repr(session)


def test_bind_prefers_call_arguments_then_session_then_defaults() -> None:
    mine, theirs = _client("http://127.0.0.1:1/v1"), _client("http://127.0.0.1:2/v1")
    session_retry, call_retry = RetryPolicy(max_attempts=2), RetryPolicy(max_attempts=4)
    clock = ManualClock()
    session = Session(client=theirs, retry=session_retry, clock=clock, progress=False)

    from_session = bind(session)
    assert str(from_session.client.base_url) == "http://127.0.0.1:2/v1/"
    assert from_session.client.max_retries == 0
    assert from_session.retry.max_attempts == 2
    assert from_session.clock is clock
    assert from_session.progress is False
    assert from_session.endpoint == "other"

    per_call = bind(session, client=mine, retry=call_retry, progress=True, endpoint="azure")
    assert str(per_call.client.base_url) == "http://127.0.0.1:1/v1/"
    assert per_call.retry.max_attempts == 4
    assert per_call.progress is True
    assert per_call.endpoint == "azure"

    defaults = bind(client=mine)
    assert defaults.clock is SYSTEM_CLOCK
    assert defaults.progress is True
    assert defaults.retry.max_attempts == RetryPolicy().max_attempts


def test_the_session_clock_drives_the_policy_unless_the_policy_has_its_own() -> None:
    clock = ManualClock(start=100.0)
    bound = bind(Session(clock=clock), client=_client())
    assert bound.retry.sleep == clock.sleep
    assert bound.retry.async_sleep == clock.asleep
    assert bound.retry.clock is clock
    waits: list[float] = []
    own = bind(Session(clock=clock), client=_client(), retry=RetryPolicy(sleep=waits.append))
    assert own.retry.sleep == waits.append  # the policy's own field wins (compatibility)
    assert own.retry.async_sleep == clock.asleep


def test_the_default_session_is_what_calls_without_a_session_use() -> None:
    client = _client("http://127.0.0.1:3/v1")
    set_default_session(Session(client=client, endpoint="openai"))
    assert str(resolve_client(None).base_url) == "http://127.0.0.1:3/v1/"
    assert bind().endpoint == "openai"
    previous = set_default_session(None)
    assert previous.client is client
    assert default_session() == Session()
    with pytest.raises(TypeError, match="Session"):
        set_default_session("nope")  # type: ignore[arg-type]


def test_the_default_session_is_built_without_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_kit._core import session as _session

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _session._reset_env_clients()
    assert default_session().client is None  # no client until one is needed
    with pytest.raises(openai.OpenAIError):
        bind()  # first use: built from OPENAI_*, which holds no key here


def test_abind_uses_the_async_client() -> None:
    aclient = openai.AsyncOpenAI(api_key=KEY, base_url="https://api.openai.com/v1")
    bound = abind(Session(async_client=aclient))
    assert isinstance(bound.client, openai.AsyncOpenAI)
    assert bound.client.max_retries == 0
    assert bound.endpoint == "openai"


def _at(base_url: str) -> Callable[[], openai.OpenAI]:
    return partial(openai.OpenAI, api_key=KEY, base_url=base_url)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (partial(openai.OpenAI, api_key=KEY), "openai"),
        (_at("https://api.openai.com/v1"), "openai"),
        (
            partial(
                openai.AzureOpenAI,
                api_key=KEY,
                azure_endpoint="https://my.example.net",
                api_version="2025-04-01",
            ),
            "azure",
        ),
        (
            partial(
                openai.AsyncAzureOpenAI,
                api_key=KEY,
                azure_endpoint="https://my.example.net",
                api_version="2025-04-01",
            ),
            "azure",
        ),
        (_at("https://res.openai.azure.com/openai/v1"), "azure"),
        (_at("https://x.services.ai.azure.com/openai/v1"), "azure"),
        (_at("http://127.0.0.1:8765/v1"), "other"),
        (_at("https://api.openai.com.evil.test/v1"), "other"),
        (_at("https://openai.azure.com.evil.test/v1"), "other"),
    ],
)
def test_endpoint_is_told_from_the_client(
    make: Callable[[], openai.OpenAI | openai.AsyncOpenAI], kind: str
) -> None:
    # Clients are built in the test, not at collection (where each would load the CA bundle).
    client = make()
    assert endpoint_of(client) == kind
    assert endpoint_of(client, endpoint="other") == "other"  # the override wins


def test_flows_wait_on_the_default_session_clock(api: respx.Router) -> None:
    # A flow's Sleep and a retry's backoff both advance the session's clock: nothing waits.
    route = api.get("/models/m").mock(
        side_effect=[
            httpx.Response(503, json={"error": {}}),
            httpx.Response(200, json={"id": "m", "object": "model", "created": 0, "owned_by": "x"}),
        ]
    )
    clock = ManualClock(start=1_000.0)
    set_default_session(Session(clock=clock))

    def flow() -> Flow[str]:
        yield Sleep(30.0)
        model = yield Request("get model", lambda c: c.models.retrieve("m"))
        return str(getattr(model, "id", ""))

    client = resolve_client(openai.OpenAI(api_key=KEY, base_url=BASE_URL))
    assert run_flow(flow(), client, RetryPolicy(jitter=0.0)) == "m"
    assert route.call_count == 2
    assert clock() == 1_000.0 + 30.0 + 0.5  # the Sleep, then one backoff of initial_wait


def test_date_clock_keeps_real_waits_and_moves_the_date() -> None:
    clock = DateClock(dt.date(2030, 2, 3))
    assert utc_today(clock) == dt.date(2030, 2, 3)
    asyncio.run(clock.asleep(0))
    clock.sleep(0)


class _UnhashableClock(ManualClock):
    __hash__ = None  # type: ignore[assignment]


def test_clocked_policies_are_remembered_and_unhashable_clocks_still_work() -> None:
    from finetune_kit._core.session import policy_with_clock

    clock, retry = ManualClock(), RetryPolicy(max_attempts=3)
    assert policy_with_clock(retry, clock) is policy_with_clock(retry, clock)
    odd = _UnhashableClock()
    clocked = policy_with_clock(retry, odd)
    assert clocked.sleep == odd.sleep
    assert clocked.max_attempts == 3


def test_facts_for_a_client_a_session_or_an_endpoint_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from finetune_kit._core.session import facts_for

    local = _client("http://127.0.0.1:8765/v1")
    azure = openai.AzureOpenAI(api_key=KEY, azure_endpoint="https://r.example", api_version="v")
    assert facts_for(local, "gpt-4o-mini").shutdown_date is None
    assert facts_for(azure, "gpt-4o-mini").shutdown_date == dt.date(2027, 10, 14)
    assert facts_for("openai", "gpt-4o-mini").shutdown_date == dt.date(2027, 1, 14)
    assert facts_for(Session(client=local), "gpt-4o").endpoint == "other"
    assert facts_for(Session(client=local, endpoint="azure"), "gpt-4o").endpoint == "azure"
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert facts_for(None, "gpt-4o").endpoint == "openai"  # the environment's client: OpenAI
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8765/v1")
    assert facts_for(None, "gpt-4o").endpoint == "other"  # ... unless it points elsewhere
    told = facts_for(azure, "my-deployment", base_model="gpt-4.1-mini-2025-04-14")
    assert (told.base, told.known, told.endpoint) == ("gpt-4.1-mini", True, "azure")
