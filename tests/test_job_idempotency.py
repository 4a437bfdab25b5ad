"""Exactly-once job creation whatever the service's clock says, and a bounded look-up.

A create whose reply is lost (the service made the job, the client saw a dropped connection)
is retried after a look-up for the job by its idempotency key. These tests pin that the
look-up matches on the key alone: against a local backend whose clock is a day behind or
ahead of ours, a lost reply still ends with one job, sync and async.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from finetune_kit import AsyncJob, Job, RetryPolicy
from finetune_kit.jobs._idempotency import LOOKUP_PAGES
from finetune_kit.jobs._options import IDEMPOTENCY_METADATA_KEY
from finetune_kit.local import FaultRule, Faults, LocalServer, ManualClock

from .fake_openai import FakeJobs, Fault, Sleeps, job_json, page
from .local.helpers import small_training_file, upload

if TYPE_CHECKING:
    from collections.abc import Iterator

    import openai
    import respx

DAY = 86_400.0
MODEL = "gpt-4o-mini"


pytestmark = pytest.mark.usefixtures("pinned_today")


@pytest.fixture(params=[-DAY, DAY], ids=["service-a-day-behind", "service-a-day-ahead"])
def skewed_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """A local backend whose clock is a day off ours, dropping the first create's reply."""
    clock = ManualClock(start=time.time() + request.param)
    faults = Faults(rules=[FaultRule("drop_after", "/fine_tuning/jobs", method="POST", first=1)])
    with LocalServer(clock=clock, faults=faults, in_process=True) as server:
        yield server


def _policy(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(jitter=0.0, sleep=sleeps.sleep, async_sleep=sleeps.async_sleep)


def _jobs_on(server: LocalServer) -> list[Any]:
    return list(server.client(max_retries=0).fine_tuning.jobs.list())


def test_a_lost_reply_makes_one_job_whatever_the_service_clock(
    skewed_server: LocalServer, sleeps: Sleeps
) -> None:
    client = skewed_server.client()
    file_id = upload(client, small_training_file())
    job = Job.create(file_id, model=MODEL, client=client, retry=_policy(sleeps))
    jobs = _jobs_on(skewed_server)
    assert [j.id for j in jobs] == [job.id]
    assert sleeps.waits, "the first reply was lost and the create retried"


async def test_async_a_lost_reply_makes_one_job_whatever_the_service_clock(
    skewed_server: LocalServer, sleeps: Sleeps
) -> None:
    file_id = upload(skewed_server.client(), small_training_file())
    client = skewed_server.async_client()
    job = await AsyncJob.create(file_id, model=MODEL, client=client, retry=_policy(sleeps))
    await client.close()
    jobs = _jobs_on(skewed_server)
    assert [j.id for j in jobs] == [job.id]
    assert sleeps.waits, "the first reply was lost and the create retried"


def test_the_look_up_reads_a_bounded_number_of_pages(
    api: respx.Router, client: openai.OpenAI, sleeps: Sleeps
) -> None:
    # A server that ignores the metadata filter and has endless history: the look-up must
    # give up after LOOKUP_PAGES pages rather than walk it all.
    listed: list[httpx.Request] = []

    def endless(request: httpx.Request) -> httpx.Response:
        listed.append(request)
        n = len(listed)
        return httpx.Response(
            200, json=page([job_json(f"ftjob-old-{n}-{i}") for i in range(100)], has_more=True)
        )

    created: list[int] = []

    def create(_: httpx.Request) -> httpx.Response:
        created.append(1)
        if len(created) == 1:
            raise httpx.ConnectError("refused before the service saw it")
        return httpx.Response(200, json=job_json("ftjob-new"))

    api.get("/fine_tuning/jobs").mock(side_effect=endless)
    api.post("/fine_tuning/jobs").mock(side_effect=create)
    job = Job.create("file-train", model=MODEL, client=client, retry=_policy(sleeps))
    assert job.id == "ftjob-new"
    assert len(listed) == LOOKUP_PAGES
    assert all(r.url.params[f"metadata[{IDEMPOTENCY_METADATA_KEY}]"] for r in listed)


def test_the_fallback_without_the_metadata_filter_is_bounded_too(
    fake: FakeJobs, client: openai.OpenAI, sleeps: Sleeps
) -> None:
    for i in range(3 * 100 * LOOKUP_PAGES):  # more history than the look-up reads
        fake.add(job_json(f"ftjob-old-{i}", metadata={"team": "x"}))
    fake.faults["create"] = [Fault(error=httpx.ConnectError("refused"))]
    rejected = httpx.Response(400, json={"error": {"message": "unknown parameter"}})
    fake.faults["list"] = [Fault(response=rejected)]
    Job.create("file-train", model=MODEL, client=client, retry=_policy(sleeps))
    # One rejected filtered request, then the newest jobs (the fake serves them all at once).
    assert fake.calls["list"] == 2
    assert fake.calls["create"] == 2
