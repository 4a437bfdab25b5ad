"""Fine-tuning jobs on the local backend: lifecycle, events, checkpoints, results, filters."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import openai
import pytest

from finetune_kit.local import ManualClock

from .helpers import SYSTEM, chat_line, jsonl, small_training_file, upload

if TYPE_CHECKING:
    from finetune_kit.local import LocalServer


def _events(
    client: openai.OpenAI, job_id: str
) -> list[openai.types.fine_tuning.FineTuningJobEvent]:
    return list(client.fine_tuning.jobs.list_events(job_id, limit=1000).data)


def test_full_lifecycle_with_pause_and_resume(
    clocked_server: LocalServer, clock: ManualClock
) -> None:
    client = clocked_server.client(max_retries=0)
    file_id = upload(client, small_training_file(30))
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=file_id, suffix="topics", seed=7
    )
    assert job.status == "validating_files"
    assert job.fine_tuned_model is None
    assert job.method is not None
    assert job.method.type == "supervised"

    clock.advance(0.5)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "queued"
    assert job.hyperparameters.n_epochs == 3  # 30 examples: 100 // 30
    assert job.hyperparameters.batch_size == 1
    assert job.trained_tokens is not None
    assert job.trained_tokens > 0
    assert job.estimated_finish is not None

    clock.advance(0.5)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    clock.advance(0.75)  # half of the 1.5 s a 90-step job runs
    metrics = [e for e in _events(client, job.id) if e.type == "metrics"]
    assert len(metrics) == 45
    assert isinstance(metrics[0].data, dict)
    assert metrics[0].data["step"] == 45
    assert metrics[0].data["total_steps"] == 90

    paused = client.fine_tuning.jobs.pause(job.id)
    # The SDK's status Literal omits "paused": compare the raw JSON.
    assert paused.model_dump()["status"] == "paused"
    clock.advance(100)
    assert client.fine_tuning.jobs.retrieve(job.id).model_dump()["status"] == "paused"
    assert len([e for e in _events(client, job.id) if e.type == "metrics"]) == 45

    resumed = client.fine_tuning.jobs.resume(job.id)
    assert resumed.status == "queued"
    clock.advance(0.5)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    clock.advance(0.75)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded"
    assert job.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:local:topics:{job.id[6:14]}"
    assert job.finished_at is not None
    assert job.estimated_finish is None
    assert job.seed == 7

    events = _events(client, job.id)
    assert events[0].message == "The job has successfully completed"
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    steps = [e.data["step"] for e in events if e.type == "metrics" and isinstance(e.data, dict)]
    assert steps == list(range(90, 0, -1))
    messages = [e.message for e in events]
    assert "Fine-tuning job paused" in messages
    assert "Fine-tuning job resumed" in messages

    (result_id,) = job.result_files
    result = client.files.retrieve(result_id)
    assert result.purpose == "fine-tune-results"
    rows = list(csv.DictReader(io.StringIO(client.files.content(result_id).text)))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
    ]
    assert len(rows) == 90
    # Real training: the loss at the end is well below the loss at the start.
    first = sum(float(r["train_loss"]) for r in rows[:10])
    last = sum(float(r["train_loss"]) for r in rows[-10:])
    assert last < first / 2


def test_events_pagination_with_after_cursor(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=upload(client, small_training_file(20))
    )
    job = _wait(local_server, client, job.id)
    everything = _events(client, job.id)
    paged: list[str] = []
    page = client.fine_tuning.jobs.list_events(job.id, limit=7)
    paged += [e.id for e in page.data]
    while page.has_more:
        page = client.fine_tuning.jobs.list_events(job.id, limit=7, after=page.data[-1].id)
        paged += [e.id for e in page.data]
    assert paged == [e.id for e in everything]
    assert len(client.fine_tuning.jobs.list_events(job.id).data) == 20  # default limit
    # The SDK's auto-pagination follows the same cursor.
    assert [e.id for e in client.fine_tuning.jobs.list_events(job.id, limit=5)] == paged


def _wait(
    server: LocalServer, client: openai.OpenAI, job_id: str
) -> openai.types.fine_tuning.FineTuningJob:
    clock = server.clock
    assert isinstance(clock, ManualClock)
    for _ in range(10_000):
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        clock.advance(0.01)  # 1 s at the server's 100x speed
    raise AssertionError(f"{job_id} did not finish on {server.url}")


def test_checkpoints_keep_last_three_and_answer(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    job = client.fine_tuning.jobs.create(
        model="gpt-4.1-mini",
        training_file=upload(client, small_training_file(20)),
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 5}}},
    )
    job = _wait(local_server, client, job.id)
    assert job.status == "succeeded"
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [100, 80, 60]
    for ckpt in checkpoints:
        assert (
            ckpt.fine_tuned_model_checkpoint
            == f"{job.fine_tuned_model}:ckpt-step-{ckpt.step_number}"
        )
        assert ckpt.metrics.train_loss is not None
        assert ckpt.metrics.train_mean_token_accuracy is not None
        assert ckpt.metrics.step == ckpt.step_number
        reply = client.chat.completions.create(
            model=ckpt.fine_tuned_model_checkpoint,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}],
        )
        assert reply.choices[0].message.content in (
            "ai",
            "coding",
            "emotion",
            "psychology",
            "trivia",
        )
    dropped = f"{job.fine_tuned_model}:ckpt-step-20"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(dropped)
    listed = {m.id for m in client.models.list()}
    assert {c.fine_tuned_model_checkpoint for c in checkpoints} <= listed
    assert job.fine_tuned_model in listed


def test_empty_suffix_and_hyperparameters_echoed(clocked_server: LocalServer) -> None:
    client = clocked_server.client(max_retries=0)
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=upload(client, small_training_file(20)),
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {
                    "n_epochs": 2,
                    "batch_size": 4,
                    "learning_rate_multiplier": 0.5,
                }
            },
        },
    )
    assert job.method is not None
    assert job.method.supervised is not None
    assert job.method.supervised.hyperparameters is not None
    assert job.method.supervised.hyperparameters.n_epochs == 2
    assert job.hyperparameters.learning_rate_multiplier == 0.5
    assert job.user_provided_suffix is None  # type: ignore[attr-defined]


def test_dpo_job_echoes_method_and_nulls_hyperparameters(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    lines = [
        {
            "input": {"messages": [{"role": "user", "content": f"question {i}"}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}],
        }
        for i in range(12)
    ]
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=upload(client, jsonl(lines)),
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
    )
    assert job.method is not None
    assert job.method.dpo is not None
    assert job.method.dpo.hyperparameters is not None
    assert job.method.dpo.hyperparameters.beta == 0.2
    job = _wait(local_server, client, job.id)
    assert job.status == "succeeded", job.error
    assert job.model_dump()["hyperparameters"] is None  # as the service sends for DPO
    reply = client.chat.completions.create(
        model=str(job.fine_tuned_model),
        messages=[{"role": "user", "content": "question 3"}],
        temperature=0,
    )
    assert reply.choices[0].message.content == "good"


def test_unknown_base_model_and_unsupported_method_refused(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    file_id = upload(client, small_training_file(12))
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="my-own-model", training_file=file_id)
    assert info.value.code == "model_not_available"
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(
            model="gpt-3.5-turbo",
            training_file=file_id,
            method={"type": "dpo", "dpo": {}},
        )
    assert info.value.param == "method"
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-nope")
    assert info.value.param == "training_file"


def test_metadata_filter(clocked_server: LocalServer) -> None:
    client = clocked_server.client(max_retries=0)
    file_id = upload(client, small_training_file(12))
    a1 = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata={"team": "a", "run": "1"}
    )
    client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata={"team": "b"}
    )
    a2 = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata={"team": "a", "run": "2"}
    )
    plain = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "a"})] == [a2.id, a1.id]
    only = client.fine_tuning.jobs.list(metadata={"team": "a", "run": "1"}).data
    assert [j.id for j in only] == [a1.id]
    assert only[0].metadata == {"team": "a", "run": "1"}
    assert len(client.fine_tuning.jobs.list().data) == 4
    nulls = client.fine_tuning.jobs.list(extra_query={"metadata": "null"}).data
    assert [j.id for j in nulls] == [plain.id]


def test_cancel(clocked_server: LocalServer, clock: ManualClock) -> None:
    client = clocked_server.client(max_retries=0)
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=upload(client, small_training_file(12))
    )
    clock.advance(1.2)
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    clock.advance(100)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "cancelled"
    assert job.fine_tuned_model is None
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.pause(job.id)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-missing")


def test_invalid_training_file_fails_the_job_naming_the_line(
    clocked_server: LocalServer, clock: ManualClock
) -> None:
    client = clocked_server.client(max_retries=0)
    lines = small_training_file(12).decode().splitlines()
    lines[2] = '{"messages": [{"role": "user", "content": "no answer"'
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=upload(client, ("\n".join(lines) + "\n").encode())
    )
    clock.advance(0.6)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.code == "invalid_training_file"
    assert job.error.param == "training_file"
    assert "Line 3" in job.error.message
    assert _events(client, job.id)[0].level == "error"


def test_validation_file_gives_valid_metrics(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    train = upload(client, small_training_file(30))
    valid = upload(client, jsonl([chat_line("can you write quicksort?", "coding")] * 10))
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=train, validation_file=valid
    )
    job = _wait(local_server, client, job.id)
    assert job.validation_file == valid
    metrics = [e.data for e in _events(client, job.id) if e.type == "metrics"]
    assert all(isinstance(d, dict) and "valid_loss" in d for d in metrics)
    full = [d for d in metrics if isinstance(d, dict) and "full_valid_loss" in d]
    assert len(full) == 3  # one per epoch


def test_identical_jobs_train_identically_without_a_seed(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    data = small_training_file(20)
    first = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(client, data))
    second = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(client, data))
    other = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=upload(client, data), suffix="x"
    )
    assert first.seed == second.seed
    assert other.seed != first.seed
    models = [str(_wait(local_server, client, j.id).fine_tuned_model) for j in (first, second)]
    replies = [
        client.chat.completions.create(
            model=m,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hm"}],
            logprobs=True,
            top_logprobs=5,
            temperature=0,
        )
        for m in models
    ]
    assert replies[0].choices[0].logprobs == replies[1].choices[0].logprobs


def test_suffix_and_metadata_limits(clocked_server: LocalServer) -> None:
    from finetune_kit.facts._limits import MAX_METADATA_PAIRS, MAX_SUFFIX_CHARS

    client = clocked_server.client(max_retries=0)
    file_id = upload(client, small_training_file(12))
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, suffix="s" * (MAX_SUFFIX_CHARS + 1)
        )
    assert info.value.param == "suffix"
    too_many = {f"k{i}": "v" for i in range(MAX_METADATA_PAIRS + 1)}
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, metadata=too_many
        )
    assert info.value.param == "metadata"
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=file_id,
        suffix="s" * MAX_SUFFIX_CHARS,
        metadata={f"k{i}": "v" for i in range(MAX_METADATA_PAIRS)},
    )
    assert str(job.fine_tuned_model or "") == ""  # not trained yet; the name comes later
    assert job.status == "validating_files"
