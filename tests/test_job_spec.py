"""Portable job specs: export a finished job's recipe, re-run it against another endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from finetune_kit import AsyncJob, Dataset, Job, JobSpec
from finetune_kit.cli._demo_flow import load_demo_data
from finetune_kit.local import LocalServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from finetune_kit import RetryPolicy
    from tests.conftest import RecordingClock

# Creating these jobs warns (model lifecycle, snapshots): not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore::finetune_kit.FinetuneKitWarning")


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    texts, labels = load_demo_data()
    keep = [i for i, label in enumerate(labels) if label in {"coding", "trivia"}]
    ds = Dataset.from_labels([texts[i] for i in keep], [labels[i] for i in keep])
    return ds.split(test_size=0.25, seed=0)


@pytest.fixture
def other(clock: RecordingClock) -> Iterator[LocalServer]:
    """A second endpoint on the same clock: where the job moves to."""
    with LocalServer(clock=clock, in_process=True) as server:
        yield server


@dataclass(frozen=True)
class Move:
    """The data, the endpoint a job starts on and the one it moves to, on one clock."""

    train: Dataset
    held_out: Dataset
    source: LocalServer
    other: LocalServer
    policy: RetryPolicy


@pytest.fixture
def move(
    clocked_server: LocalServer,
    other: LocalServer,
    clock: RecordingClock,
    data: tuple[Dataset, Dataset],
) -> Move:
    train, held_out = data
    return Move(train, held_out, clocked_server, other, clock.policy())


@pytest.fixture
def job(move: Move) -> Job:
    """A job on the first endpoint, to move."""
    return Job.create(
        move.train,
        model="gpt-4o-mini",
        validation=move.held_out,
        suffix="spec",
        seed=11,
        hyperparameters={"n_epochs": 2},
        client=move.source.client(),
        retry=move.policy,
    )


def test_spec_round_trips_and_recreates_the_job_elsewhere(move: Move, job: Job) -> None:
    train, held_out = move.train, move.held_out
    job.wait(progress=False, poll_interval=1.0)
    spec = job.spec()
    assert spec.model == "gpt-4o-mini"
    assert spec.method == "supervised"
    assert spec.hyperparameters["n_epochs"] == 2
    assert spec.seed == 11
    assert spec.suffix == "spec"
    assert spec.training_sha256 == train.content_hash()
    assert spec.validation_sha256 == held_out.content_hash()
    assert spec.source_job == job.id
    assert JobSpec.from_json(spec.to_json()) == spec

    other = move.other.client()
    moved = Job.create_from_spec(spec, train, validation=held_out, client=other, retry=move.policy)
    assert moved.id != job.id
    assert moved.raw.model == "gpt-4o-mini"
    assert moved.hyperparameters["n_epochs"] == 2
    assert moved.raw.seed == 11
    tuned = moved.wait(progress=False, poll_interval=1.0)
    assert ":spec:" in tuned.name
    # The data went to the other endpoint: its files, under the same hash.
    assert any(train.content_hash() in f.filename for f in other.files.list())


def test_other_data_is_refused(data: tuple[Dataset, Dataset]) -> None:
    train, held_out = data
    spec = JobSpec(
        model="gpt-4o-mini",
        method="supervised",
        training_sha256=train.content_hash(),
        validation_sha256=held_out.content_hash(),
        has_validation=True,
    )
    with pytest.raises(ValueError, match="training data differs"):
        Job.create_from_spec(spec, held_out, validation=held_out)
    with pytest.raises(ValueError, match="pass validation="):
        Job.create_from_spec(spec, train)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[]", "expected an object"),
        ('{"model": "m", "method": "supervised", "version": 9}', "version 9"),
        ('{"model": "m", "method": "supervised", "version": 1, "colour": 1}', "unknown fields"),
        ("not json", "not a job spec"),
    ],
)
def test_bad_specs_are_refused(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JobSpec.from_json(text)


async def test_async_spec(move: Move, job: Job) -> None:
    source, target = move.source.async_client(), move.other.async_client()
    try:
        async_job = await AsyncJob.get(job.id, client=source, retry=move.policy)
        spec = await async_job.spec()
        assert spec.training_sha256 == move.train.content_hash()
        moved = await AsyncJob.create_from_spec(
            spec, move.train, validation=move.held_out, client=target, retry=move.policy
        )
        assert moved.raw.seed == spec.seed
    finally:
        await source.close()
        await target.close()


def test_an_azure_jobs_tier_travels_with_its_spec(move: Move) -> None:
    train, held_out = move.train, move.held_out
    job = Job.create(
        train,
        model="gpt-4o-mini-2024-07-18",
        validation=held_out,
        tier="global",
        client=move.source.azure_client(),
        retry=move.policy,
    )
    spec = job.spec()  # read back from the job's trainingType
    assert spec.tier == "global"
    moved = Job.create_from_spec(
        spec, train, validation=held_out, client=move.other.azure_client(), retry=move.policy
    )
    assert (moved.raw.model_extra or {}).get("trainingType") == "GlobalStandard"
    # Off Azure a tier means nothing: the caller is told, before anything is sent.
    with pytest.raises(ValueError, match="tier"):
        Job.create_from_spec(spec, train, validation=held_out, client=move.other.client())
