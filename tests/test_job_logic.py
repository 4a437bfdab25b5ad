"""The pure job logic, on SDK objects built by hand."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from finetune_kit import Checkpoint, Event, JobCancelledError, JobFailedError, MetricsRow
from finetune_kit.jobs._job import (
    idempotency_key,
    merge_events,
    metrics_from_events,
    parse_metrics_csv,
    retirement_warning,
    summarize_metrics,
)
from finetune_kit.jobs._raw import (
    _error,
    _hyperparameters,
    _method,
    _n_epochs,
    _outcome_error,
    _status,
)

from .fake_openai import event_json, job_json

CSV = (
    "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
    "1,2.5,0.40,2.6,0.38\n"
    "2,1.9,0.55,,\n"
    "3,1.2,0.70,1.4,0.66\n"
)


def _job(**fields: object) -> FineTuningJob:
    data = job_json()
    data.update(fields)
    return FineTuningJob.construct(**data)


def _event(event_id: str, created_at: int, data: dict[str, object] | None = None) -> Event:
    return Event(
        id=event_id,
        created_at=created_at,
        level="info",
        message=event_id,
        type="metrics" if data else "message",
        data=data,
    )


# --- events ----------------------------------------------------------------------------


def test_merge_orders_by_time_and_drops_duplicates() -> None:
    newest_first = [_event("c", 30), _event("b2", 20), _event("b1", 20), _event("a", 10)]
    ordered = merge_events([], newest_first)
    # Same second: the service's order (b1 came before b2) is kept.
    assert [e.id for e in ordered] == ["a", "b1", "b2", "c"]
    overlap = [_event("d", 40), _event("c", 30), _event("c", 30)]
    assert [e.id for e in merge_events(ordered, overlap)] == ["a", "b1", "b2", "c", "d"]


def test_event_from_sdk_keeps_metrics_and_tolerates_missing_type() -> None:
    metrics: dict[str, object] = {"step": 3, "total_steps": 9, "train_loss": 1.5}
    sdk = FineTuningJobEvent.construct(**event_json("ev", 100, "Step 3/9", data=metrics))
    event = Event.from_sdk(sdk)
    assert event.data == {"step": 3, "total_steps": 9, "train_loss": 1.5}
    assert event.time == dt.datetime(1970, 1, 1, 0, 1, 40, tzinfo=dt.timezone.utc)
    bare = FineTuningJobEvent.construct(
        id="ev2",
        created_at=5,
        level="warn",
        message="hm",
        object="fine_tuning.job.event",
        data="not a dict",
    )
    assert Event.from_sdk(bare).type is None
    assert Event.from_sdk(bare).data is None


# --- metrics ---------------------------------------------------------------------------


def test_parse_plain_and_base64_csv_alike() -> None:
    plain = parse_metrics_csv(CSV)
    assert parse_metrics_csv(base64.b64encode(CSV.encode())) == plain
    assert parse_metrics_csv(base64.b64encode(CSV.encode()).decode() + "\n") == plain
    assert plain[1] == MetricsRow(step=2, train_loss=1.9, train_accuracy=0.55)
    assert plain[2].valid_mean_token_accuracy == 0.66


def test_parse_csv_with_newer_columns_bom_and_nan() -> None:
    text = (
        "\ufeffstep,train_loss,train_mean_token_accuracy,valid_loss,full_valid_loss\n"
        "2,1.0,0.5,nan,0.9\n1,2.0,0.4,,\n"
    )
    rows = parse_metrics_csv(text.encode())
    assert [r.step for r in rows] == [1, 2]
    assert rows[1].train_accuracy == 0.5
    assert rows[1].valid_loss is None
    assert rows[1].full_valid_loss == 0.9


@pytest.mark.parametrize("content", [b"", b"hello, world\n1,2\n", base64.b64encode(b"a,b\n1,2")])
def test_parse_rejects_what_is_not_a_metrics_file(content: bytes) -> None:
    with pytest.raises(ValueError, match="metrics CSV"):
        parse_metrics_csv(content)


def test_metrics_from_events_uses_only_metrics_events() -> None:
    events = [
        _event("m2", 20, {"step": 2, "train_loss": 1.0, "valid_mean_token_accuracy": 0.7}),
        _event("x", 15),
        _event("m1", 10, {"step": 1, "train_loss": 2.0, "train_mean_token_accuracy": 0.3}),
    ]
    rows = metrics_from_events(events)
    assert rows == [
        MetricsRow(step=1, train_loss=2.0, train_accuracy=0.3),
        MetricsRow(step=2, train_loss=1.0, valid_mean_token_accuracy=0.7),
    ]


def _rows(train: list[float], valid: list[float], per_epoch: int = 2) -> list[MetricsRow]:
    rows = []
    for epoch, (t, v) in enumerate(zip(train, valid, strict=True)):
        for i in range(per_epoch):
            step = epoch * per_epoch + i + 1
            last = i == per_epoch - 1
            rows.append(
                MetricsRow(
                    step=step, train_loss=t, valid_loss=v, full_valid_loss=v if last else None
                )
            )
    return rows


def _checkpoint(step: int, loss: float) -> Checkpoint:
    return Checkpoint(
        id=f"ckpt-{step}",
        step=step,
        model=f"ft:gpt-4o-mini:org::abc:ckpt-step-{step}",
        created_at=0,
        metrics=MetricsRow(step=step, full_valid_loss=loss),
    )


def test_summary_flags_overfitting_and_names_the_best_checkpoint() -> None:
    rows = _rows(train=[2.0, 1.2, 0.7, 0.3], valid=[2.1, 1.5, 1.6, 1.9])
    checkpoints = [_checkpoint(4, 1.5), _checkpoint(6, 1.6), _checkpoint(8, 1.9)]
    summary = summarize_metrics(rows, checkpoints, n_epochs=4)
    assert summary.overfitting
    assert summary.epochs_known
    assert summary.epoch_train_loss == [2.0, 1.2, 0.7, 0.3]
    assert summary.epoch_valid_loss == [2.1, 1.5, 1.6, 1.9]
    assert summary.best_checkpoint is not None
    assert summary.best_checkpoint.step == 4
    assert "overfitting" in summary.message
    assert "ckpt-step-4" in summary.message
    assert summary.final_valid_loss == 1.9
    assert summary.final_train_loss == 0.3


def test_summary_healthy_run() -> None:
    summary = summarize_metrics(_rows([2.0, 1.5, 1.2], [2.1, 1.7, 1.4]), n_epochs=3)
    assert not summary.overfitting
    assert "no sign of overfitting across 3 epochs" in summary.message


def test_summary_falls_back_to_checkpoint_spacing_then_quarters() -> None:
    rows = _rows(train=[2.0, 1.0, 0.5], valid=[2.0, 1.2, 1.8])
    by_checkpoints = summarize_metrics(rows, [_checkpoint(4, 1.2), _checkpoint(6, 1.8)])
    assert by_checkpoints.epochs_known
    assert by_checkpoints.overfitting
    quarters = summarize_metrics(rows)
    assert not quarters.epochs_known
    assert "quarter" in quarters.message


def test_checkpoints_fill_in_the_full_validation_loss() -> None:
    # A result file without full_valid_* columns: noisy batch losses only.
    rows = [
        MetricsRow(step=s, train_loss=2.0 - s / 10, valid_loss=0.1 if s % 2 else 0.9)
        for s in range(1, 9)
    ]
    checkpoints = [_checkpoint(4, 1.0), _checkpoint(6, 1.1), _checkpoint(8, 1.3)]
    summary = summarize_metrics(rows, checkpoints, n_epochs=4)
    assert summary.epoch_valid_loss[1:] == [1.0, 1.1, 1.3]
    assert summary.final_valid_loss == 1.3
    assert summary.overfitting
    # A checkpoint at a step the rows lack still counts.
    assert summarize_metrics(rows[:6], [_checkpoint(8, 0.5)], n_epochs=4).final_valid_loss == 0.5


def test_summary_without_validation_or_rows() -> None:
    no_valid = [MetricsRow(step=s, train_loss=1.0 / s) for s in range(1, 9)]
    assert "pass validation data" in summarize_metrics(no_valid, n_epochs=2).message
    empty = summarize_metrics([])
    assert empty.steps == 0
    assert not empty.overfitting


def test_checkpoint_from_sdk() -> None:
    sdk = FineTuningJobCheckpoint.construct(
        id="ftckpt-1",
        created_at=5,
        fine_tuned_model_checkpoint="ft:gpt-4o-mini:org::abc:ckpt-step-88",
        fine_tuning_job_id="ftjob-1",
        metrics={"step": 88, "train_loss": 0.5, "full_valid_loss": 0.7},
        object="fine_tuning.job.checkpoint",
        step_number=88,
    )
    checkpoint = Checkpoint.from_sdk(sdk)
    assert checkpoint.step == 88
    assert checkpoint.model.endswith(":ckpt-step-88")
    assert checkpoint.metrics.full_valid_loss == 0.7


# --- reading jobs the SDK types get wrong ------------------------------------------------


def test_paused_status_null_hyperparameters_and_null_error_are_tolerated() -> None:
    raw = _job(
        status="paused",
        hyperparameters=None,
        error={"code": None, "message": None, "param": None},
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1, "n_epochs": 2}}},
    )
    assert _status(raw) == "paused"
    assert _error(raw) is None
    assert _hyperparameters(raw) == {"beta": 0.1, "n_epochs": 2}
    assert _method(raw) == "dpo"
    assert _n_epochs(raw) == 2
    assert _outcome_error(raw) is None


def test_supervised_hyperparameters_from_either_place() -> None:
    raw = FineTuningJob.model_validate(
        job_json(
            hyperparameters={"n_epochs": 3, "batch_size": "auto"},
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        )
    )
    assert _hyperparameters(raw) == {"n_epochs": 3, "batch_size": "auto"}
    assert _n_epochs(_job(hyperparameters={"n_epochs": "auto"}, method=None)) is None


def test_failed_and_cancelled_jobs_become_errors() -> None:
    failed = _job(
        status="failed",
        error={"code": "invalid_n_examples", "message": "at least 10", "param": "training_file"},
    )
    error = _outcome_error(failed)
    assert isinstance(error, JobFailedError)
    assert (error.code, error.message, error.param) == (
        "invalid_n_examples",
        "at least 10",
        "training_file",
    )
    assert error.job_id == "ftjob-1"
    assert "invalid_n_examples" in str(error)
    silent = _outcome_error(_job(status="failed", error=None))
    assert isinstance(silent, JobFailedError)
    assert "no reason given" in str(silent)
    assert isinstance(_outcome_error(_job(status="cancelled")), JobCancelledError)


# --- creating ----------------------------------------------------------------------------


def _key(
    *,
    training_file: str = "file-a",
    validation_file: str | None = None,
    model: str = "gpt-4o-mini",
    method: str = "supervised",
    hyperparameters: dict[str, object] | None = None,
    grader: dict[str, object] | None = None,
    suffix: str | None = None,
    seed: int | None = None,
) -> str:
    return idempotency_key(
        training_file=training_file,
        validation_file=validation_file,
        model=model,
        method=method,
        hyperparameters={"n_epochs": 3} if hyperparameters is None else hyperparameters,
        grader=grader,
        suffix=suffix,
        seed=seed,
    )


def test_idempotency_key_depends_on_every_input() -> None:
    key = _key()
    assert key == _key()
    assert key.startswith("ftk1-")
    assert len(key) <= 64
    others = [
        _key(training_file="file-b"),
        _key(validation_file="file-v"),
        _key(model="gpt-4o"),
        _key(method="dpo"),
        _key(hyperparameters={"n_epochs": 4}),
        _key(grader={"type": "string_check"}),
        _key(suffix="x"),
        _key(seed=1),
    ]
    assert key not in others
    assert len(set(others)) == len(others)


def test_retirement_warning_window() -> None:
    assert retirement_warning("gpt-4o-mini", dt.date(2026, 6, 1)) is None
    soon = retirement_warning("ft:gpt-4o-mini-2024-07-18:org::x", dt.date(2026, 10, 16))
    assert soon is not None
    assert "in 90 days" in soon
    gone = retirement_warning("gpt-3.5-turbo-0125", dt.date(2026, 10, 23))
    assert gone is not None
    assert "was retired" in gone
    assert retirement_warning("my-azure-deployment", dt.date(2030, 1, 1)) is None
