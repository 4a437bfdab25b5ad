"""AsyncJob: the same surface as Job, the same behaviour through the same flows."""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from finetune_kit import (
    AsyncJob,
    Dataset,
    Event,
    Job,
    JobFailedError,
    JobOptions,
    JobTimeoutError,
    RetryPolicy,
)
from finetune_kit.jobs import _flows as job_module

from .fake_openai import FakeFiles, FakeJobs, Fault, Sleeps, error_response, event_json, job_json
from .threads import record_dataset_threads

if TYPE_CHECKING:
    import openai
    import respx


def _public(cls: type) -> dict[str, Any]:
    return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}


#: Members that return an iterator at once: the async one iterates with ``async for``.
ITERATORS = {"list"}


def test_public_surfaces_match() -> None:
    sync, aio = _public(Job), _public(AsyncJob)
    assert sync.keys() == aio.keys()
    for name, member in sync.items():
        other = aio[name]
        if isinstance(inspect.getattr_static(Job, name), property):
            assert isinstance(inspect.getattr_static(AsyncJob, name), property), name
            continue
        assert callable(member), name
        if name in ITERATORS:
            assert not inspect.iscoroutinefunction(other), name
        else:
            assert inspect.iscoroutinefunction(other), f"AsyncJob.{name} is not a coroutine"
        assert not inspect.iscoroutinefunction(member), name
        assert list(inspect.signature(member).parameters) == list(
            inspect.signature(other).parameters
        ), name
    assert not issubclass(AsyncJob, Job)


async def test_async_create_survives_a_dropped_connection(
    fake: FakeJobs,
    async_client: openai.AsyncOpenAI,
    policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(job_module, "_today", lambda: dt.date(2026, 6, 1))
    fake.faults["create"] = [Fault(error=httpx.ConnectError("reset"), after=True)]
    job = await AsyncJob.create(
        "file-train", model="gpt-4o-mini", client=async_client, retry=policy
    )
    assert list(fake.jobs) == [job.id]
    assert fake.calls["create"] == 1


async def test_async_rate_limits_and_lifecycle(
    fake: FakeJobs, async_client: openai.AsyncOpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.add(job_json(status="running"), [event_json("b", 2), event_json("a", 1)])
    fake.faults["retrieve"] = [Fault(response=error_response(429, retry_after="3"))]
    job = await AsyncJob.get("ftjob-1", client=async_client, retry=policy)
    assert sleeps.waits == [3.0]
    assert [e.id for e in await job.events()] == ["a", "b"]
    assert (await job.pause()).status == "paused"
    assert (await job.resume()).status == "queued"
    assert (await job.refresh()).status == "queued"
    assert [j.id async for j in AsyncJob.list(client=async_client)] == ["ftjob-1"]
    assert [r.step for r in await job.metrics()] == []
    assert (await job.cancel()).status == "cancelled"
    assert repr(job).startswith("AsyncJob('ftjob-1'")


async def test_async_wait(
    fake: FakeJobs, async_client: openai.AsyncOpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.add(job_json(status="running"))
    job = await AsyncJob.get("ftjob-1", client=async_client, retry=policy)
    order = iter(["running", "succeeded"])

    def advance(raw: dict[str, Any], calls: int) -> None:
        del calls
        raw["status"] = next(order)
        if raw["status"] == "succeeded":
            raw["fine_tuned_model"] = "ft:gpt-4o-mini:org::x"
            fake.events["ftjob-1"].insert(0, event_json("done", 5))

    fake.on_retrieve = advance
    seen: list[Event] = []
    tuned = await job.wait(poll_interval=2, progress=False, on_event=seen.append)
    assert tuned.name == "ft:gpt-4o-mini:org::x"
    assert type(tuned).__name__ == "AsyncTunedModel"
    assert [e.id for e in seen] == ["done"]
    assert sleeps.waits == [2]


async def test_async_wait_failure_and_timeout(
    fake: FakeJobs, async_client: openai.AsyncOpenAI, policy: RetryPolicy
) -> None:
    fake.add(job_json(status="running"))
    job = await AsyncJob.get("ftjob-1", client=async_client, retry=policy)
    with pytest.raises(JobTimeoutError):
        await job.wait(timeout=1, progress=False)
    fake.jobs["ftjob-1"]["status"] = "failed"
    fake.jobs["ftjob-1"]["error"] = {"code": "x", "message": "y", "param": None}
    with pytest.raises(JobFailedError, match="x: y"):
        await job.wait(progress=False)


async def test_async_checkpoints_and_summary(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    api.get("/fine_tuning/jobs/ftjob-1").mock(
        return_value=httpx.Response(200, json=job_json(status="succeeded"))
    )
    api.get("/fine_tuning/jobs/ftjob-1/events").mock(
        return_value=httpx.Response(
            200,
            json={
                "object": "list",
                "has_more": False,
                "data": [
                    event_json("m1", 1, data={"step": 1, "train_loss": 1.0}),
                ],
            },
        )
    )
    api.get("/fine_tuning/jobs/ftjob-1/checkpoints").mock(
        return_value=httpx.Response(200, json={"object": "list", "data": [], "has_more": False})
    )
    job = await AsyncJob.get("ftjob-1", client=async_client)
    assert await job.checkpoints() == []
    summary = await job.metrics_summary()
    assert summary.steps == 1
    assert summary.final_train_loss == 1.0


def _examples(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"{tag} question {i}"},
                {"role": "assistant", "content": f"answer {i % 3}"},
            ]
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("entry", ["create", "create_from"])
async def test_async_create_does_its_dataset_work_off_the_loop_thread(
    api: respx.Router,
    async_client: openai.AsyncOpenAI,
    policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
    entry: str,
) -> None:
    monkeypatch.setattr(job_module, "_today", lambda: dt.date(2026, 6, 1))
    FakeFiles(api)
    fake = FakeJobs(api)
    train = Dataset.from_records(_examples(20, "train"))
    valid = Dataset.from_records(_examples(5, "valid"))
    # Every Dataset method (validation, stats, reading the bytes, ...) and every SHA-256
    # (the upload's content hash) records the thread it ran on.
    where = record_dataset_threads(monkeypatch, lambda name: name != "__init__")
    loop_thread = threading.get_ident()
    if entry == "create":
        job = await AsyncJob.create(
            train, model="gpt-4o-mini", validation=valid, client=async_client, retry=policy
        )
    else:
        options = JobOptions(model="gpt-4o-mini", validation=valid)
        job = await AsyncJob.create_from(train, options, client=async_client, retry=policy)
    assert list(fake.jobs) == [job.id]
    names = {name for name, _ in where}
    assert {"validate", "to_jsonl_bytes", "sha256"} <= names
    on_loop = sorted({name for name, ident in where if ident == loop_thread})
    assert on_loop == [], f"Dataset work on the event loop's thread: {on_loop}"
