"""End to end: the library through the real ``openai`` client over loopback HTTP.

The server and the library share one fake clock: every wait the library makes (polling,
retry backoff, Retry-After) advances that clock instead of sleeping, and the server's jobs move
on the same clock. So whole fine-tuning flows run in well under a second, deterministically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import openai
import pytest

from finetune_kit import (
    AsyncJob,
    AsyncTunedModel,
    Dataset,
    Job,
    RetryPolicy,
    TunedModel,
    aclassify,
    classify,
)
from finetune_kit.local import FaultRule, Faults, LocalServer, ManualClock
from tests.dates import today_is

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import RecordingClock

MODEL = "gpt-4o-mini"
_YEAR_2100 = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture(autouse=True)
def _a_day_without_lifecycle_warnings() -> Iterator[None]:
    # "Today" is pinned: with filterwarnings=error, any warning fails these flows, so they
    # must not depend on how far the real calendar is from a retirement in the catalogue.
    with today_is(dt.date(2026, 6, 1)):
        yield


@dataclass
class FlowResult:
    job_id: str
    model: str
    predictions: tuple[str | None, ...]
    accuracy: float


def run_flow(
    client: openai.OpenAI, policy: RetryPolicy, data: tuple[Dataset, Dataset, list[str]]
) -> FlowResult:
    train, held_out, labels = data
    job = Job.create(
        train,
        model=MODEL,
        validation=held_out,
        suffix="e2e",
        seed=7,
        client=client,
        retry=policy,
    )
    tuned = job.wait(progress=False, poll_interval=1.0)
    evaluation = tuned.evaluate(held_out, labels=labels, progress=False, retry=policy)
    return FlowResult(job.id, tuned.name, evaluation.predictions, evaluation.accuracy)


def test_full_flow_tunes_a_model_that_beats_its_base(
    clocked_server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    client = clocked_server.client()
    result = run_flow(client, clock.policy(), data)
    base = TunedModel(MODEL, client=client).evaluate(
        data[1], labels=data[2], progress=False, retry=clock.policy()
    )
    assert result.model.startswith("ft:gpt-4o-mini:local:e2e:")
    assert result.accuracy > base.accuracy + 0.3
    assert clock.slept, "waiting went through the injected sleep"

    job = Job.get(result.job_id, client=client)
    assert job.status == "succeeded"
    assert job.trained_tokens
    events = job.events()
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    checkpoints = job.checkpoints()
    assert 1 <= len(checkpoints) <= 3
    # Each checkpoint is a model that answers within the label set.
    answer = classify(
        "Which river is the longest?",
        labels=data[2],
        model=checkpoints[-1].model,
        client=client,
        retry=clock.policy(),
    )
    assert answer.label in data[2]
    summary = job.metrics_summary()
    assert summary.best_checkpoint is not None


def test_flow_under_faults_completes_with_one_file_and_one_job_and_same_results(
    clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    # The service's clock runs ahead of any real date this suite meets (up to 2100): finding
    # the job a lost reply created must not hinge on the machine's calendar, and how it copes
    # with a service clock *behind* the client's is pinned by the skew test below.
    clock.advance(_YEAR_2100 - clock())
    with LocalServer(clock=clock) as clean:
        expected = run_flow(clean.client(), clock.policy(), data)

    faults = Faults(
        rules=[
            # The upload is stored, then the response is lost: the retry must reuse it.
            FaultRule("drop_after", "/files", method="POST", first=1),
            # The job is created, then the client sees a 500: the retry must find it.
            FaultRule("error_after", "/fine_tuning/jobs", method="POST", first=1),
            FaultRule("rate_limit", "/fine_tuning/jobs/*", method="GET", first=3, retry_after=2),
            FaultRule("unavailable", "/fine_tuning/jobs/*/events", first=2),
            FaultRule("drop", "/chat/completions", rate=0.1),
            FaultRule("rate_limit", "/chat/completions", rate=0.1, retry_after=1),
            FaultRule("server_error", "/chat/completions", rate=0.05),
        ],
        seed=3,
    )
    with LocalServer(clock=clock, faults=faults) as faulty:
        client = faulty.client()
        got = run_flow(client, clock.policy(), data)
        raw = faulty.client(max_retries=0)
        files = [f for f in raw.files.list() if f.purpose == "fine-tune"]
        jobs = list(raw.fine_tuning.jobs.list())

    assert len(files) == 2, [f.filename for f in files]  # training + validation, once each
    assert len(jobs) == 1
    assert got.predictions == expected.predictions
    assert got.accuracy == expected.accuracy
    assert 2.0 in clock.slept, "Retry-After was honoured"


def test_restart_with_data_dir_loses_nothing(
    tmp_path: Path, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    train, held_out, labels = data
    policy = clock.policy()
    with LocalServer(clock=clock, data_dir=tmp_path) as first:
        job = Job.create(train, model=MODEL, client=first.client(), retry=policy)
        file_id = job.raw.training_file
    # The job was mid-flight when the server stopped; a new server on the same folder and
    # port picks it up where the clock says.
    with LocalServer(clock=clock, data_dir=tmp_path) as second:
        client = second.client()
        assert client.files.retrieve(file_id).id == file_id
        tuned = Job.get(job.id, client=client, retry=policy).wait(progress=False)
        assert tuned.classify("Write a Python loop", labels=labels, retry=policy).label in labels
    with LocalServer(clock=clock, data_dir=tmp_path) as third:
        again = Job.get(job.id, client=third.client(), retry=policy)
        assert again.status == "succeeded"
        assert again.fine_tuned_model == tuned.name
        # Uploading the same data again reuses the stored file (content hash).
        assert train.upload(client=third.client(), retry=policy) == file_id
        del held_out


def test_azure_client_trains_azure_named_models_served_only_through_deployments(
    clocked_server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    """In process, the Azure client trains; its model answers on Azure only once deployed
    (the whole deploy flow is in test_azure_flow.py), and on the OpenAI paths by name."""
    azure = clocked_server.azure_client()
    assert isinstance(azure, openai.AzureOpenAI)
    train, _, labels = data
    tuned = Job.create(train, model=MODEL, suffix="e2e", client=azure, retry=clock.policy()).wait(
        progress=False, poll_interval=1.0
    )
    assert tuned.name.startswith(f"{MODEL}.ft-")
    assert tuned.name.endswith("-e2e")
    with pytest.raises(openai.NotFoundError) as missing:
        classify("What is 2 + 2?", labels=labels, model=tuned.name, client=azure)
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["code"] == "DeploymentNotFound"
    answer = classify(
        "What is 2 + 2?", labels=labels, model=tuned.name, client=clocked_server.client()
    )
    assert answer.label in labels


def test_reasoning_model_refusals_move_classify_down_the_ladder(
    clocked_server: LocalServer,
) -> None:
    client = clocked_server.client()
    labels = ["positive", "negative", "neutral"]
    first = classify("I love it", labels=labels, model="o4-mini", client=client)
    assert first.label in labels
    assert first.technique != "logit_bias"
    # Remembered per client and model: the second call goes straight to what works.
    second = classify("I hate it", labels=labels, model="o4-mini", client=client)
    assert second.technique == first.technique
    plain = classify("I love it", labels=labels, model=MODEL, client=client)
    assert plain.technique == "logit_bias"
    assert plain.probabilities is not None
    assert sum(plain.probabilities.values()) == pytest.approx(1.0)


async def test_async_flow(
    clocked_server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    train, held_out, labels = data
    async with clocked_server.async_client() as client:
        job = await AsyncJob.create(
            train, model=MODEL, client=client, retry=clock.policy(), suffix="a"
        )
        tuned = await job.wait(progress=False)
        assert isinstance(tuned, AsyncTunedModel)
        evaluation = await tuned.evaluate(held_out, labels=labels, progress=False)
        assert evaluation.accuracy > 0.6
        answer = await aclassify(
            "Tell me a joke about compilers", labels=labels, model=tuned.name, client=client
        )
        assert answer.label in labels


@pytest.mark.parametrize("day", [dt.date(2027, 1, 10), dt.date(2027, 2, 1), dt.date(2028, 6, 1)])
def test_local_backend_models_do_not_retire_with_openai(
    clocked_server: LocalServer,
    clock: RecordingClock,
    data: tuple[Dataset, Dataset, list[str]],
    day: dt.date,
) -> None:
    # The local backend is an "other" endpoint: OpenAI's dates are not its dates, so training
    # there never warns, before or after OpenAI retires the base of the same name.
    with today_is(day):
        Job.create(data[0], model=MODEL, client=clocked_server.client(), retry=clock.policy())


def test_a_lost_create_reply_never_makes_two_jobs_whatever_the_clocks_say(
    data: tuple[Dataset, Dataset, list[str]],
) -> None:
    clock = ManualClock(start=1_000_000_000.0)  # the service thinks it is 2001
    faults = Faults(rules=[FaultRule("error_after", "/fine_tuning/jobs", method="POST", first=1)])
    with LocalServer(clock=clock, faults=faults) as server:
        policy = RetryPolicy(max_attempts=4, sleep=clock.sleep, async_sleep=clock.asleep)
        Job.create(data[0], model=MODEL, client=server.client(), retry=policy)
        jobs = list(server.client(max_retries=0).fine_tuning.jobs.list())
    assert len(jobs) == 1
