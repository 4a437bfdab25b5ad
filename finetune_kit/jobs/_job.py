"""Fine-tuning jobs: the pure logic at the bottom, ``Job`` / ``AsyncJob`` shells on top.

Layers, from the bottom:

1. Pure functions over SDK objects built by anyone (tests build them by hand): events
   ordered and de-duplicated, metrics parsed from the result file (plain or base64 CSV) or
   from metrics events, the overfitting summary, the idempotency key, the checks made before
   any request, the error a failed job turns into.
2. Flows (see ``_client.py``): generators that describe the requests a job operation makes -
   create with idempotency, paging through events, waiting - without making them.
3. ``Job`` runs flows on a sync client, ``AsyncJob`` on an async one; neither holds logic.

What the SDK's types get wrong and this module tolerates: the ``paused`` status (not in the
``status`` literal), ``hyperparameters`` null for DPO/RFT jobs, and an ``error`` whose fields
are all null on a healthy job. The SDK builds response objects without validating them, so
these arrive as they are; the accessors below read them defensively.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import math
import time
import warnings
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import openai
from pydantic import BaseModel, ConfigDict

from .._core.client import (
    Request,
    Sleep,
    arun_flow,
    once,
    resolve_async_client,
    resolve_client,
    run_flow,
)
from .._core.progress import progress_bar
from .._exceptions import (
    DatasetError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
)
from ..datasets._upload import upload_flow
from ..facts._models import model_facts
from ..facts._tokens import FinetuneKitWarning
from ._lifecycle import _today, _unavailable, retirement_warning
from ._spec import JobSpec, spec_flow

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
    from openai.types.fine_tuning.fine_tuning_job import Error as SdkJobError
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
    from tqdm import tqdm as Tqdm

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ..datasets._dataset import Dataset
    from ..models._tuned_model import AsyncTunedModel, TunedModel

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "TERMINAL_STATUSES",
    "AsyncJob",
    "Checkpoint",
    "Event",
    "Job",
    "MetricsRow",
    "MetricsSummary",
    "idempotency_key",
    "merge_events",
    "metrics_from_events",
    "parse_metrics_csv",
    "retirement_warning",
    "summarize_metrics",
]

logger = logging.getLogger("finetune_kit")

Method = Literal["supervised", "dpo", "reinforcement"]

#: Statuses after which a job never changes again.
TERMINAL_STATUSES: Final = frozenset({"succeeded", "failed", "cancelled"})

#: The metadata key under which each job carries its idempotency key.
IDEMPOTENCY_METADATA_KEY: Final = "finetune_kit_idempotency_key"

_METHODS: Final[tuple[Method, ...]] = ("supervised", "dpo", "reinforcement")
_KINDS_FOR_METHOD: Final[dict[str, frozenset[str]]] = {
    "supervised": frozenset({"chat", "completion"}),
    "dpo": frozenset({"preference"}),
    "reinforcement": frozenset({"reinforcement"}),
}
_MAX_METADATA_PAIRS: Final = 16
_MAX_METADATA_VALUE: Final = 512
#: Jobs created this long before a create call began still count as that call's (clock skew).
_CLOCK_SKEW: Final = 120.0
_PAGE: Final = 100
_MAX_POLL_INTERVAL: Final = 60.0


# --- public result types -------------------------------------------------------------------


class MetricsRow(BaseModel):
    """Training metrics at one step (from the result file, a metrics event or a checkpoint).

    Accuracies are mean token accuracies. ``full_valid_*`` are computed on the whole validation
    file, usually only at the end of each epoch; ``valid_*`` on a validation batch.
    """

    model_config = ConfigDict(frozen=True)

    step: int
    train_loss: float | None = None
    train_accuracy: float | None = None
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None


class Event(BaseModel):
    """One event of a job's log; ``type`` is ``message`` or ``metrics`` (then ``data`` holds
    the step's metrics)."""

    model_config = ConfigDict(frozen=True)

    id: str
    created_at: int
    level: str
    message: str
    type: str | None = None
    data: dict[str, Any] | None = None

    @property
    def time(self) -> dt.datetime:
        """``created_at`` as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.created_at, tz=dt.timezone.utc)

    @classmethod
    def from_sdk(cls, event: FineTuningJobEvent) -> Event:
        """Convert the SDK's event (tolerating missing or odd fields)."""
        data = event.data if isinstance(event.data, dict) else None
        return cls(
            id=event.id,
            created_at=int(event.created_at),
            level=str(event.level),
            message=str(event.message),
            type=getattr(event, "type", None),
            data=data,
        )


class Checkpoint(BaseModel):
    """A usable model saved at the end of an epoch (the service keeps the last three).

    Attributes:
        id: the checkpoint's id.
        step: the training step it was saved at.
        model: the model name to call it by (``ft:...:ckpt-step-N``).
        created_at: UNIX time it was saved.
        metrics: the metrics at that step.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    step: int
    model: str
    created_at: int
    metrics: MetricsRow

    @classmethod
    def from_sdk(cls, checkpoint: FineTuningJobCheckpoint) -> Checkpoint:
        """Convert the SDK's checkpoint."""
        m = checkpoint.metrics
        values = {name: getattr(m, name, None) for name in _CHECKPOINT_METRICS} if m else {}
        return cls(
            id=checkpoint.id,
            step=int(checkpoint.step_number),
            model=checkpoint.fine_tuned_model_checkpoint,
            created_at=int(checkpoint.created_at),
            metrics=_row({"step": checkpoint.step_number, **values}),
        )


class MetricsSummary(BaseModel):
    """How training went, per epoch, and whether it overfit.

    Attributes:
        steps: the last step with metrics.
        final_train_loss: the training loss at the last step that has one.
        final_valid_loss: the last full validation loss (else the last batch validation loss).
        epoch_train_loss: mean training loss per epoch.
        epoch_valid_loss: validation loss per epoch (full validation loss where the service
            computed one, else the mean batch validation loss; None without validation data).
        epochs_known: False when epoch boundaries were unknown and the run was split in four.
        overfitting: validation loss rose over the last epochs while training loss kept
            falling - the model is memorising rather than generalising (common with small
            datasets; fewer epochs or more data help).
        best_checkpoint: the checkpoint with the lowest full validation loss, if any.
        message: the above in one sentence.
    """

    model_config = ConfigDict(frozen=True)

    steps: int
    final_train_loss: float | None
    final_valid_loss: float | None
    epoch_train_loss: list[float | None]
    epoch_valid_loss: list[float | None]
    epochs_known: bool
    overfitting: bool
    best_checkpoint: Checkpoint | None
    message: str


# --- pure logic: events ----------------------------------------------------------------------


def merge_events(known: Sequence[Event], newest_first: Iterable[Event]) -> list[Event]:
    """``known`` (in time order) plus the unseen ones of ``newest_first``, in time order.

    Pages come newest first and may overlap (new events push old ones onto the next page);
    duplicates are dropped by id. Events of the same second keep the service's order.
    """
    seen = {e.id for e in known}
    fresh: list[Event] = []
    for event in newest_first:
        if event.id not in seen:
            seen.add(event.id)
            fresh.append(event)
    fresh.reverse()  # oldest first, preserving the service's order within a second
    # A stable sort keeps that order for equal timestamps.
    return sorted([*known, *fresh], key=lambda e: e.created_at)


# --- pure logic: metrics ---------------------------------------------------------------------

_CHECKPOINT_METRICS: Final = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
#: Our field <- the names it goes by in result files, metrics events and checkpoints.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "train_loss": ("train_loss",),
    "train_accuracy": ("train_accuracy", "train_mean_token_accuracy"),
    "valid_loss": ("valid_loss",),
    "valid_mean_token_accuracy": ("valid_mean_token_accuracy", "valid_accuracy"),
    "full_valid_loss": ("full_valid_loss",),
    "full_valid_mean_token_accuracy": ("full_valid_mean_token_accuracy",),
}


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _row(values: Mapping[str, object]) -> MetricsRow:
    step = _number(values.get("step"))
    fields: dict[str, float | None] = {}
    for field, names in _ALIASES.items():
        fields[field] = next(
            (n for n in (_number(values.get(name)) for name in names) if n is not None), None
        )
    return MetricsRow(step=int(step or 0), **fields)


def _sorted_rows(rows: Iterable[MetricsRow]) -> list[MetricsRow]:
    by_step: dict[int, MetricsRow] = {}
    for row in rows:
        by_step[row.step] = row  # a later report of the same step wins
    return [by_step[step] for step in sorted(by_step)]


def _csv_text(content: bytes | str) -> str:
    raw = content if isinstance(content, str) else content.decode("utf-8-sig", errors="replace")
    text = raw.strip().lstrip("\ufeff")
    if text.split("\n", 1)[0].strip().startswith("step"):
        return text
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a metrics CSV (no 'step' header), plain or base64") from exc
    inner = decoded.decode("utf-8-sig", errors="replace").strip()
    if not inner.split("\n", 1)[0].strip().startswith("step"):
        raise ValueError("base64 content is not a metrics CSV (no 'step' header)")
    return inner


def parse_metrics_csv(content: bytes | str) -> list[MetricsRow]:
    """Rows of a job's result file, which the service serves plain or base64-encoded.

    Columns are matched by name (``step``, ``train_loss``, ``train_accuracy``, ``valid_loss``,
    ``valid_mean_token_accuracy`` and, where present, ``full_valid_*``); empty cells and NaN
    become None. Rows are ordered by step, one per step.

    Raises:
        ValueError: the content is neither a metrics CSV nor base64 of one.
    """
    reader = csv.DictReader(io.StringIO(_csv_text(content)))
    return _sorted_rows(
        _row(record) for record in reader if _number(record.get("step")) is not None
    )


def metrics_from_events(events: Iterable[Event]) -> list[MetricsRow]:
    """Rows from the ``metrics`` events (what is known while a job runs), ordered by step."""
    return _sorted_rows(
        _row(e.data) for e in events if e.type == "metrics" and e.data and "step" in e.data
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _epoch_length(
    rows: Sequence[MetricsRow], checkpoints: Sequence[Checkpoint], n_epochs: int | None
) -> int | None:
    last = rows[-1].step
    if n_epochs:
        return max(1, math.ceil(last / n_epochs))
    steps = sorted(c.step for c in checkpoints)
    if len(steps) >= 2 and steps[-1] > steps[-2]:
        return steps[-1] - steps[-2]  # one checkpoint per epoch
    return None


def summarize_metrics(
    rows: Sequence[MetricsRow],
    checkpoints: Sequence[Checkpoint] = (),
    *,
    n_epochs: int | None = None,
) -> MetricsSummary:
    """Per-epoch losses, an overfitting verdict and the best checkpoint.

    Epochs come from ``n_epochs`` (the job's hyperparameter), else from the spacing of the
    checkpoints (one per epoch); when neither is known the run is split into four equal parts
    and ``epochs_known`` is False. Overfitting means: the validation loss reached its lowest
    before the last epoch and has since risen by more than 1 %, while the training loss kept
    falling.
    """
    rows = _with_checkpoint_metrics(rows, checkpoints)
    best = min(
        (c for c in checkpoints if _ckpt_loss(c) is not None),
        key=lambda c: cast("float", _ckpt_loss(c)),
        default=None,
    )
    if not rows:
        return MetricsSummary(
            steps=0,
            final_train_loss=None,
            final_valid_loss=None,
            epoch_train_loss=[],
            epoch_valid_loss=[],
            epochs_known=False,
            overfitting=False,
            best_checkpoint=best,
            message="no metrics yet",
        )
    length = _epoch_length(rows, checkpoints, n_epochs)
    epochs_known = length is not None
    size = length or max(1, math.ceil(rows[-1].step / 4))
    groups: dict[int, list[MetricsRow]] = {}
    for row in rows:
        groups.setdefault(max(0, row.step - 1) // size, []).append(row)
    ordered = [groups[k] for k in sorted(groups)]
    train = [_mean(r.train_loss for r in group) for group in ordered]
    valid = [_epoch_valid(group) for group in ordered]
    overfitting = _overfits(train, valid)
    final_train = next((r.train_loss for r in reversed(rows) if r.train_loss is not None), None)
    final_valid = next(
        (r.full_valid_loss for r in reversed(rows) if r.full_valid_loss is not None),
        next((r.valid_loss for r in reversed(rows) if r.valid_loss is not None), None),
    )
    unit = "epoch" if epochs_known else "quarter of the run"
    if overfitting:
        message = (
            f"overfitting: validation loss rose over the last {unit}s while training loss "
            "fell; consider fewer epochs, more data, or an earlier checkpoint"
        )
    elif all(v is None for v in valid):
        message = "no validation metrics: pass validation data to detect overfitting"
    else:
        message = f"no sign of overfitting across {len(ordered)} {unit}s"
    if best is not None:
        message += f"; best checkpoint: {best.model} (full validation loss {_ckpt_loss(best):.4f})"
    return MetricsSummary(
        steps=rows[-1].step,
        final_train_loss=final_train,
        final_valid_loss=final_valid,
        epoch_train_loss=train,
        epoch_valid_loss=valid,
        epochs_known=epochs_known,
        overfitting=overfitting,
        best_checkpoint=best,
        message=message,
    )


def _with_checkpoint_metrics(
    rows: Iterable[MetricsRow], checkpoints: Sequence[Checkpoint]
) -> list[MetricsRow]:
    """``rows`` by step, with the full validation metrics the checkpoints add.

    Result files often lack the ``full_valid_*`` columns that the checkpoints of the last
    epochs carry; those are the less noisy validation numbers, so they fill the gaps.
    """
    by_step = {row.step: row for row in _sorted_rows(rows)}
    for checkpoint in checkpoints:
        found = checkpoint.metrics
        row = by_step.get(checkpoint.step)
        if row is None:
            by_step[checkpoint.step] = found.model_copy(update={"step": checkpoint.step})
            continue
        fill = {
            name: getattr(found, name)
            for name in ("full_valid_loss", "full_valid_mean_token_accuracy")
            if getattr(row, name) is None and getattr(found, name) is not None
        }
        if fill:
            by_step[checkpoint.step] = row.model_copy(update=fill)
    return [by_step[step] for step in sorted(by_step)]


def _ckpt_loss(checkpoint: Checkpoint) -> float | None:
    m = checkpoint.metrics
    return m.full_valid_loss if m.full_valid_loss is not None else m.valid_loss


def _epoch_valid(group: Sequence[MetricsRow]) -> float | None:
    full = [r.full_valid_loss for r in group if r.full_valid_loss is not None]
    return full[-1] if full else _mean(r.valid_loss for r in group)


def _overfits(train: Sequence[float | None], valid: Sequence[float | None]) -> bool:
    pairs = [(t, v) for t, v in zip(train, valid, strict=True) if t is not None and v is not None]
    if len(pairs) < 2:
        return False
    best = min(range(len(pairs)), key=lambda i: pairs[i][1])
    if best == len(pairs) - 1:
        return False
    (best_train, best_valid), (last_train, last_valid) = pairs[best], pairs[-1]
    return last_valid > best_valid * 1.01 and last_train < best_train


# --- pure logic: creating ----------------------------------------------------------------------


def idempotency_key(
    *,
    training_file: str,
    validation_file: str | None,
    model: str,
    method: str,
    hyperparameters: Mapping[str, object] | None,
    grader: Mapping[str, object] | None = None,
    suffix: str | None,
    seed: int | None,
) -> str:
    """A key that is the same for the same job request and differs for any other."""
    canonical = json.dumps(
        {
            "training_file": training_file,
            "validation_file": validation_file,
            "model": model,
            "method": method,
            "hyperparameters": dict(hyperparameters or {}),
            "grader": dict(grader or {}),
            "suffix": suffix,
            "seed": seed,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "ftk1-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _method_payload(
    method: Method,
    hyperparameters: Mapping[str, object] | None,
    grader: Mapping[str, object] | None,
) -> dict[str, object]:
    config: dict[str, object] = {}
    if hyperparameters:
        config["hyperparameters"] = dict(hyperparameters)
    if grader is not None:
        config["grader"] = dict(grader)
    return {"type": method, method: config}


def _check_kind(what: str, kind: str, method: Method, model: str) -> None:
    allowed = _KINDS_FOR_METHOD[method]
    if kind not in allowed:
        raise DatasetError(
            f"the {what} data is {kind} data, but method={method!r} trains on "
            f"{' or '.join(sorted(allowed))} data"
        )
    facts = model_facts(model)
    if facts.known and kind == "completion" and not facts.legacy_completion:
        raise DatasetError(
            f"the {what} data is prompt/completion data, which only babbage-002 and davinci-002 "
            f"train on; {model} needs chat data"
        )
    if facts.legacy_completion and kind == "chat":
        raise DatasetError(f"{model} trains on prompt/completion data, not chat data")


def _overlap_warning(training: Dataset, validation: Dataset) -> str | None:
    """Why validation metrics would flatter the model, or None when the sets are disjoint."""
    from ..datasets._dataset import shared_examples

    shared = shared_examples(training, validation)
    if not shared:
        return None
    shown = ", ".join(f"validation {v} = training {t}" for v, t in shared[:3])
    more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
    return (
        f"{len(shared)} of {len(validation)} validation examples also appear in the training "
        f"data ({shown}{more}): validation loss and accuracy will look better than they are. "
        "Dataset.split() makes disjoint sets."
    )


class _CreatePlan:
    """Everything :meth:`Job.create` decides before the first request (pure, checked)."""

    def __init__(
        self,
        *,
        training: Dataset | str,
        validation: Dataset | str | None,
        model: str,
        method: str,
        hyperparameters: Mapping[str, object] | None,
        grader: Mapping[str, object] | None,
        suffix: str | None,
        seed: int | None,
        metadata: Mapping[str, str] | None,
        integrations: Sequence[Mapping[str, object]] | None,
        idempotency_key: str | None,
        today: dt.date,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")
        self.method: Method = method
        if self.method == "reinforcement" and grader is None:
            raise ValueError("method='reinforcement' needs grader= (the RFT grader config)")
        if self.method != "reinforcement" and grader is not None:
            raise ValueError(f"grader= is only for method='reinforcement', not {method!r}")
        for what, data in (("training", training), ("validation", validation)):
            if data is not None and not isinstance(data, str):
                _check_kind(what, data.kind, self.method, model)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= _MAX_METADATA_VALUE:
            raise ValueError(
                f"idempotency_key must be 1 to {_MAX_METADATA_VALUE} characters (a metadata value)"
            )
        user_metadata = dict(metadata or {})
        if IDEMPOTENCY_METADATA_KEY in user_metadata:
            raise ValueError(f"metadata key {IDEMPOTENCY_METADATA_KEY!r} is finetune_kit's own")
        if len(user_metadata) >= _MAX_METADATA_PAIRS:
            raise ValueError(
                f"metadata holds at most {_MAX_METADATA_PAIRS} pairs and finetune_kit needs one "
                f"for the idempotency key: pass at most {_MAX_METADATA_PAIRS - 1}"
            )
        facts = model_facts(model)
        if facts.known and self.method not in facts.methods:
            warnings.warn(
                f"{facts.base} is not known to support {method} fine-tuning (known: "
                f"{', '.join(facts.methods)}); the service will say if it does not",
                FinetuneKitWarning,
                stacklevel=3,
            )
        retiring = retirement_warning(model, today)
        if retiring:
            warnings.warn(retiring, FinetuneKitWarning, stacklevel=3)
        overlap = None
        if (
            not isinstance(training, str)
            and validation is not None
            and not isinstance(validation, str)
        ):
            overlap = _overlap_warning(training, validation)
        if overlap:
            warnings.warn(overlap, FinetuneKitWarning, stacklevel=3)
        self.training = training
        self.validation = validation
        self.model = model
        self.hyperparameters = dict(hyperparameters) if hyperparameters else None
        self.grader = dict(grader) if grader is not None else None
        self.suffix = suffix
        self.seed = seed
        self.metadata = user_metadata
        self.integrations = [dict(i) for i in integrations] if integrations else None
        self.explicit_key = idempotency_key

    def params(self, training_file: str, validation_file: str | None, key: str) -> dict[str, Any]:
        """The ``jobs.create`` arguments (the idempotency key goes into ``metadata``)."""
        params: dict[str, Any] = {
            "model": self.model,
            "training_file": training_file,
            "method": _method_payload(self.method, self.hyperparameters, self.grader),
            "metadata": {**self.metadata, IDEMPOTENCY_METADATA_KEY: key},
        }
        optional = {
            "validation_file": validation_file,
            "suffix": self.suffix,
            "seed": self.seed,
            "integrations": self.integrations,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return params

    def key(self, training_file: str, validation_file: str | None) -> str:
        return self.explicit_key or idempotency_key(
            training_file=training_file,
            validation_file=validation_file,
            model=self.model,
            method=self.method,
            hyperparameters=self.hyperparameters,
            grader=self.grader,
            suffix=self.suffix,
            seed=self.seed,
        )


# --- pure logic: reading a job -------------------------------------------------------------------


def _status(raw: FineTuningJob) -> str:
    # A plain str: the service also says "paused", which the SDK's literal lacks.
    return str(raw.status)


def _error(raw: FineTuningJob) -> SdkJobError | None:
    error = raw.error
    if error is None:
        return None
    if not any(getattr(error, name, None) for name in ("code", "message", "param")):
        return None  # healthy jobs can carry an error whose fields are all null
    return error


def _hyperparameters(raw: FineTuningJob) -> dict[str, object]:
    values: dict[str, object] = {}
    top = cast("Any", raw).hyperparameters  # null for DPO/RFT despite the SDK's type
    if top is not None:
        values.update({k: v for k, v in top.model_dump().items() if v is not None})
    method = getattr(raw, "method", None)
    config = getattr(method, str(getattr(method, "type", "")), None) if method else None
    nested = getattr(config, "hyperparameters", None)
    if nested is not None:
        values.update({k: v for k, v in nested.model_dump().items() if v is not None})
    return values


def _method(raw: FineTuningJob) -> str:
    method = getattr(raw, "method", None)
    return str(getattr(method, "type", None) or "supervised")


def _n_epochs(raw: FineTuningJob) -> int | None:
    value = _hyperparameters(raw).get("n_epochs")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _outcome_error(raw: FineTuningJob) -> JobError | None:
    """The exception a finished-but-unsuccessful job turns into (None if it succeeded)."""
    status = _status(raw)
    if status == "failed":
        error = _error(raw)
        code = getattr(error, "code", None) or None
        message = getattr(error, "message", None) or None
        param = getattr(error, "param", None) or None
        detail = f": {code}: {message}" if code or message else " (no reason given)"
        where = f" (param {param})" if param else ""
        return JobFailedError(
            f"fine-tuning job {raw.id} failed{detail}{where}",
            job_id=raw.id,
            code=code,
            service_message=message,
            param=param,
        )
    if status == "cancelled":
        return JobCancelledError(f"fine-tuning job {raw.id} was cancelled", job_id=raw.id)
    if status == "succeeded" and not raw.fine_tuned_model:
        return JobError(f"job {raw.id} succeeded but names no fine-tuned model", job_id=raw.id)
    return None


# --- progress while waiting ---------------------------------------------------------------------


class _Watch:
    """What ``wait()`` remembers between polls: seen events, backoff, the progress bar."""

    def __init__(
        self,
        job: FineTuningJob,
        *,
        progress: bool,
        on_event: Callable[[Event], object] | None,
        poll_interval: float,
        wall: Callable[[], float],
    ) -> None:
        self.job_id = job.id
        self.seen: set[str] = set()
        self.cursor: str | None = None
        self.on_event = on_event
        self.poll_interval = poll_interval
        self.delay = poll_interval
        self.wall = wall
        self.status: str | None = None  # so the first poll counts as a change
        self.bar: Tqdm[Any] | None = None
        if progress:
            self.bar = progress_bar(
                total=None, enabled=True, description=f"{job.id} {_status(job)}", unit="step"
            )

    def take(self, job: FineTuningJob, newest_first: Sequence[Event]) -> list[Event]:
        """Record a poll; return the new events in time order (``on_event`` already called)."""
        fresh = merge_events([], [e for e in newest_first if e.id not in self.seen])
        self.seen.update(e.id for e in fresh)
        if newest_first:
            self.cursor = newest_first[0].id
        changed = bool(fresh) or _status(job) != self.status
        self.status = _status(job)
        self.delay = (
            self.poll_interval
            if changed
            else min(self.delay * 1.5, max(_MAX_POLL_INTERVAL, self.poll_interval))
        )
        for event in fresh:
            logger.debug("job %s: %s", self.job_id, event.message)
            if self.on_event is not None:
                self.on_event(event)
        self._show(job, fresh)
        return fresh

    def _show(self, job: FineTuningJob, fresh: Sequence[Event]) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.set_description(f"{job.id} {self.status}", refresh=False)
        metrics = [e.data for e in fresh if e.type == "metrics" and e.data]
        parts: list[str] = []
        if metrics:
            last = metrics[-1]
            total = _number(last.get("total_steps"))
            step = _number(last.get("step"))
            if total is not None:
                bar.total = int(total)
            if step is not None:
                bar.n = int(step)
            loss = _number(last.get("train_loss"))
            if loss is not None:
                parts.append(f"loss {loss:.4f}")
        finish = job.estimated_finish
        if finish:
            left = max(0, int(finish - self.wall()))
            parts.append(f"ETA {left // 60}m{left % 60:02d}s")
        if parts:
            bar.set_postfix_str(", ".join(parts), refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- flows ------------------------------------------------------------------------------------


def _retrieve(job_id: str) -> Request:
    return Request(
        f"retrieve fine-tuning job {job_id}", lambda c: c.fine_tuning.jobs.retrieve(job_id)
    )


def _events_page(job_id: str, after: str | None) -> Request:
    return Request(
        f"list events of job {job_id}",
        lambda c: c.fine_tuning.jobs.list_events(job_id, limit=_PAGE, after=after or openai.omit),
    )


def _download(file_id: str) -> Request:
    return Request(f"download result file {file_id}", lambda c: c.files.content(file_id))


def _checkpoints_page(job_id: str, after: str | None) -> Request:
    return Request(
        f"list checkpoints of job {job_id}",
        lambda c: c.fine_tuning.jobs.checkpoints.list(
            job_id, limit=_PAGE, after=after or openai.omit
        ),
    )


def _jobs_page(after: str | None, limit: int, metadata: Mapping[str, str] | None) -> Request:
    return Request(
        "list fine-tuning jobs",
        lambda c: c.fine_tuning.jobs.list(
            limit=limit,
            after=after or openai.omit,
            metadata=dict(metadata) if metadata else openai.omit,
        ),
    )


def _pages(first: Callable[[str | None], Request], stop_at: str | None = None) -> Flow[list[Any]]:
    """Every item of a newest-first cursor listing, up to (not including) ``stop_at``."""
    items: list[Any] = []
    after: str | None = None
    while True:
        page = yield first(after)
        data: list[Any] = list(page.data or [])
        for item in data:
            if item.id == stop_at:
                return items
            items.append(item)
        if not data or page.has_more is False:
            return items
        after = data[-1].id


def _new_events(job_id: str, stop_at: str | None) -> Flow[list[Event]]:
    raw = yield from _pages(lambda after: _events_page(job_id, after), stop_at)
    return [Event.from_sdk(e) for e in raw]


def events_flow(job_id: str) -> Flow[list[Event]]:
    """All of a job's events, in time order, without duplicates."""
    newest_first = yield from _new_events(job_id, None)
    return merge_events([], newest_first)


def checkpoints_flow(job_id: str) -> Flow[list[Checkpoint]]:
    """A job's checkpoints, by step."""
    raw = yield from _pages(lambda after: _checkpoints_page(job_id, after))
    return sorted((Checkpoint.from_sdk(c) for c in raw), key=lambda c: c.step)


def list_flow(limit: int | None, metadata: Mapping[str, str] | None) -> Flow[list[FineTuningJob]]:
    """Jobs, newest first: at most ``limit`` (None = all), optionally filtered by metadata."""
    jobs: list[FineTuningJob] = []
    after: str | None = None
    while limit is None or len(jobs) < limit:
        size = _PAGE if limit is None else min(_PAGE, limit - len(jobs))
        page = yield _jobs_page(after, size, metadata)
        data: list[FineTuningJob] = list(page.data or [])
        jobs.extend(data)
        if not data or page.has_more is False:
            break
        after = data[-1].id
    return jobs if limit is None else jobs[:limit]


def metrics_flow(job_id: str) -> Flow[list[MetricsRow]]:
    """Metrics from the result file when there is one, else from the metrics events."""
    raw: FineTuningJob = yield _retrieve(job_id)
    return (yield from _metrics_of(raw))


def _metrics_of(raw: FineTuningJob) -> Flow[list[MetricsRow]]:
    for file_id in raw.result_files or []:
        content = yield _download(file_id)
        try:
            return parse_metrics_csv(content.content)
        except ValueError as exc:
            logger.warning("result file %s of job %s: %s; using events", file_id, raw.id, exc)
    events = yield from events_flow(raw.id)
    return metrics_from_events(events)


def summary_flow(job_id: str) -> Flow[MetricsSummary]:
    """The metrics summary (see :func:`summarize_metrics`)."""
    raw: FineTuningJob = yield _retrieve(job_id)
    rows = yield from _metrics_of(raw)
    checkpoints = yield from checkpoints_flow(job_id)
    return summarize_metrics(rows, checkpoints, n_epochs=_n_epochs(raw))


def _find_job(key: str, since: float | None) -> Flow[FineTuningJob | None]:
    """The newest job carrying idempotency ``key`` (created after ``since``, if given)."""
    try:
        page = yield _jobs_page(None, _PAGE, {IDEMPOTENCY_METADATA_KEY: key})
    except openai.BadRequestError:
        # Some compatible servers reject the metadata filter: the newest jobs will do.
        page = yield _jobs_page(None, _PAGE, None)
    for job in page.data or []:
        # Filter again: a compatible server may ignore the metadata filter.
        tags = getattr(job, "metadata", None) or {}
        if tags.get(IDEMPOTENCY_METADATA_KEY) != key:
            continue
        if since is not None and job.created_at < since - _CLOCK_SKEW:
            continue
        found: FineTuningJob = job
        return found
    return None


def _create(params: dict[str, Any]) -> Request:
    return Request("create fine-tuning job", lambda c: c.fine_tuning.jobs.create(**params))


def create_flow(plan: _CreatePlan, *, now: float) -> Flow[FineTuningJob]:
    """Upload what needs uploading, then create the job exactly once."""
    training = plan.training
    if isinstance(training, str):
        training_file = training
    else:
        training_file = yield from upload_flow(training, model=plan.model)
    validation = plan.validation
    if validation is None or isinstance(validation, str):
        validation_file = validation
    else:
        validation_file = yield from upload_flow(validation, model=plan.model, role="validation")
    key = plan.key(training_file, validation_file)
    if plan.explicit_key:
        existing = yield from _find_job(key, None)
        if existing is not None:
            logger.info("job %s already carries idempotency key %s; reusing it", existing.id, key)
            return existing
    params = plan.params(training_file, validation_file, key)
    try:
        job: FineTuningJob = yield once(
            "create fine-tuning job", _create(params), lambda: _find_job(key, now)
        )
    except openai.APIStatusError as exc:
        unavailable = _unavailable(exc)
        if unavailable is not None:
            raise unavailable from exc
        raise
    logger.info("created fine-tuning job %s (%s on %s)", job.id, plan.method, plan.model)
    return job


def wait_flow(
    job: FineTuningJob,
    *,
    timeout: float | None,
    poll_interval: float,
    progress: bool,
    on_event: Callable[[Event], object] | None,
    on_update: Callable[[FineTuningJob], None],
    clock: Callable[[], float],
    wall: Callable[[], float],
) -> Flow[FineTuningJob]:
    """Poll until the job finishes; returns it on success, raises otherwise."""
    if poll_interval <= 0:
        raise ValueError("poll_interval must be positive")
    started = clock()
    watch = _Watch(
        job, progress=progress, on_event=on_event, poll_interval=poll_interval, wall=wall
    )
    try:
        while True:
            job = yield _retrieve(job.id)
            on_update(job)
            newest_first = yield from _new_events(job.id, watch.cursor)
            watch.take(job, newest_first)
            if _status(job) in TERMINAL_STATUSES:
                error = _outcome_error(job)
                if error is not None:
                    raise error
                return job
            delay = watch.delay
            if timeout is not None:
                left = timeout - (clock() - started)
                if left <= 0:
                    raise JobTimeoutError(
                        f"job {job.id} is still {_status(job)} after {timeout:g}s; it keeps "
                        f"running: resume with Job.get({job.id!r}).wait()",
                        job_id=job.id,
                    )
                delay = min(delay, left)
            yield Sleep(delay)
    except (KeyboardInterrupt, asyncio.CancelledError):
        logger.warning(
            "stopped watching job %s (the job keeps running); resume with Job.get(%r).wait()",
            job.id,
            job.id,
        )
        raise
    finally:
        watch.close()


# --- the shells ---------------------------------------------------------------------------------


class _JobView:
    """What Job and AsyncJob both show about the job as last fetched (no I/O here)."""

    _raw: FineTuningJob
    _retry: RetryPolicy | None

    def _set_raw(self, raw: FineTuningJob) -> None:
        self._raw = raw

    def _watch(
        self,
        timeout: float | None,
        poll_interval: float,
        progress: bool,
        on_event: Callable[[Event], object] | None,
    ) -> Flow[FineTuningJob]:
        clock = self._retry.clock if self._retry is not None else None
        return wait_flow(
            self._raw,
            timeout=timeout,
            poll_interval=poll_interval,
            progress=progress,
            on_event=on_event,
            on_update=self._set_raw,
            clock=clock or time.monotonic,
            wall=time.time,
        )

    @property
    def raw(self) -> FineTuningJob:
        """The SDK's object as last fetched."""
        return self._raw

    @property
    def id(self) -> str:
        """The job id (``ftjob-...``)."""
        return self._raw.id

    @property
    def status(self) -> str:
        """``validating_files``, ``queued``, ``running``, ``paused``, ``succeeded``,
        ``failed`` or ``cancelled`` (as last fetched; see :meth:`refresh`)."""
        return _status(self._raw)

    @property
    def model(self) -> str:
        """The base model being tuned."""
        return self._raw.model

    @property
    def fine_tuned_model(self) -> str | None:
        """The resulting model's name, once the job succeeded."""
        return self._raw.fine_tuned_model

    @property
    def trained_tokens(self) -> int | None:
        """Billable tokens processed, once the job finished."""
        return self._raw.trained_tokens

    @property
    def error(self) -> SdkJobError | None:
        """Why the job failed (code, message, param), or None."""
        return _error(self._raw)

    @property
    def method(self) -> str:
        """``supervised``, ``dpo`` or ``reinforcement``."""
        return _method(self._raw)

    @property
    def hyperparameters(self) -> dict[str, object]:
        """The hyperparameters in effect, wherever the service reports them."""
        return _hyperparameters(self._raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, status={self.status!r}, model={self.model!r})"


class Job(_JobView):
    """A fine-tuning job on the service, through a sync client.

    Get one from :meth:`create`, :meth:`get` or :meth:`list`. The job remembers the client and
    retry policy it was obtained with and uses them for everything it does.
    """

    def __init__(
        self,
        raw: FineTuningJob,
        *,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._raw = raw
        self._user_client = client
        self._client = resolve_client(client)
        self._retry = retry

    def _run(self, flow: Flow[Any]) -> Any:
        return run_flow(flow, self._client, self._retry)

    @classmethod
    def create(
        cls,
        training: Dataset | str,
        *,
        model: str,
        validation: Dataset | str | None = None,
        method: str = "supervised",
        hyperparameters: Mapping[str, object] | None = None,
        grader: Mapping[str, object] | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
        integrations: Sequence[Mapping[str, object]] | None = None,
        idempotency_key: str | None = None,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """Start a fine-tuning job; a retried request never creates a second one.

        Args:
            training: a Dataset (validated and uploaded, or an identical upload reused) or the
                id of an uploaded file.
            model: the base model (or a fine-tuned one to continue from).
            validation: validation data, like ``training``.
            method: ``"supervised"``, ``"dpo"`` or ``"reinforcement"``.
            hyperparameters: the method's hyperparameters (``n_epochs``, ``batch_size``,
                ``learning_rate_multiplier``; DPO ``beta``; RFT ``reasoning_effort``, ...).
            grader: the RFT grader config (required for, and only for, reinforcement).
            suffix: up to 64 characters added to the fine-tuned model's name.
            seed: for reproducible training.
            metadata: up to 15 key/value strings to tag the job with.
            integrations: e.g. ``[{"type": "wandb", "wandb": {"project": "..."}}]``.
            idempotency_key: use this key instead of the derived one; a job that already
                carries it is returned instead of creating another (even from another run).
            client: the client to use; omitted, the default one.
            retry: the retry policy; omitted, the default one.

        Raises:
            DatasetError: the data does not fit the method or model (before any request).
            DatasetValidationError: a Dataset has validation errors.
            FineTuningUnavailableError: the service refuses to create jobs for this caller.
            ValueError: inconsistent arguments (before any request).
        """
        plan = _CreatePlan(
            training=training,
            validation=validation,
            model=model,
            method=method,
            hyperparameters=hyperparameters,
            grader=grader,
            suffix=suffix,
            seed=seed,
            metadata=metadata,
            integrations=integrations,
            idempotency_key=idempotency_key,
            today=_today(),
        )
        resolved = resolve_client(client)
        raw = run_flow(create_flow(plan, now=time.time()), resolved, retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    def get(
        cls, job_id: str, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
    ) -> Job:
        """The job with this id.

        Raises:
            openai.NotFoundError: there is no such job.
        """
        raw = run_flow(_single(_retrieve(job_id)), resolve_client(client), retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    def list(
        cls,
        *,
        limit: int | None = None,
        metadata: Mapping[str, str] | None = None,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> builtins.list[Job]:
        """Jobs, newest first: at most ``limit`` (None = all), filtered by ``metadata``."""
        raws = run_flow(list_flow(limit, metadata), resolve_client(client), retry)
        return [cls(raw, client=client, retry=retry) for raw in raws]

    def refresh(self) -> Job:
        """Fetch the job's current state; returns ``self``."""
        self._raw = self._run(_single(_retrieve(self.id)))
        return self

    def events(self) -> builtins.list[Event]:
        """All events so far, oldest first, without duplicates."""
        result: builtins.list[Event] = self._run(events_flow(self.id))
        return result

    def checkpoints(self) -> builtins.list[Checkpoint]:
        """The saved checkpoints, by step."""
        result: builtins.list[Checkpoint] = self._run(checkpoints_flow(self.id))
        return result

    def metrics(self) -> builtins.list[MetricsRow]:
        """Metrics per step: from the result file, or from metrics events while running."""
        result: builtins.list[MetricsRow] = self._run(metrics_flow(self.id))
        return result

    def metrics_summary(self) -> MetricsSummary:
        """Per-epoch losses, whether the job overfit, and the best checkpoint."""
        result: MetricsSummary = self._run(summary_flow(self.id))
        return result

    def wait(
        self,
        *,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        progress: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> TunedModel:
        """Watch the job until it finishes and return the tuned model.

        Polls with backoff (from ``poll_interval`` up to a minute while nothing changes),
        fetching only events it has not seen. Ctrl-C stops the watching, not the job.

        Args:
            timeout: give up after this many seconds (None = never).
            poll_interval: seconds between polls while things happen.
            progress: show a progress bar (step of total steps, loss, ETA).
            on_event: called once for each event, oldest first (the history on the first poll).

        Raises:
            JobFailedError: the job failed (``code``, ``message``, ``param`` from the service).
            JobCancelledError: the job was cancelled.
            JobTimeoutError: ``timeout`` passed; the job keeps running.
        """
        raw: FineTuningJob = self._run(self._watch(timeout, poll_interval, progress, on_event))
        # Imported on use: the model handle pulls in the classification stack.
        from ..models._tuned_model import TunedModel

        return TunedModel(
            cast("str", raw.fine_tuned_model),
            client=self._user_client,
            job_id=raw.id,
            base_model=raw.model,
        )

    def cancel(self) -> Job:
        """Ask the service to cancel the job; returns ``self`` (updated)."""
        self._raw = self._run(control_flow("cancel", self.id))
        return self

    def pause(self) -> Job:
        """Pause a running job (its checkpoints stay usable); returns ``self``."""
        self._raw = self._run(control_flow("pause", self.id))
        return self

    def resume(self) -> Job:
        """Resume a paused job; returns ``self``."""
        self._raw = self._run(control_flow("resume", self.id))
        return self

    def spec(self, *, tier: str | None = None) -> JobSpec:
        """This job's recipe, to re-run it elsewhere with :meth:`create_from_spec`."""
        flow = spec_flow(
            self._raw, method=self.method, hyperparameters=self.hyperparameters, tier=tier
        )
        return cast("JobSpec", self._run(flow))

    @classmethod
    def create_from_spec(
        cls,
        spec: JobSpec,
        training: Dataset,
        *,
        validation: Dataset | None = None,
        idempotency_key: str | None = None,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """Create, on ``client``'s endpoint, the job ``spec`` describes, from the same data.

        Raises:
            ValueError: the data is not the data the spec's job trained on.
        """
        spec.check_data(training.content_hash(), validation.content_hash() if validation else None)
        return cls.create(
            training,
            validation=validation,
            idempotency_key=idempotency_key,
            client=client,
            retry=retry,
            **spec.create_options(),
        )


class AsyncJob(_JobView):
    """The async sibling of :class:`Job`: the same methods, as coroutines."""

    def __init__(
        self,
        raw: FineTuningJob,
        *,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._raw = raw
        self._user_client = client
        self._client = resolve_async_client(client)
        self._retry = retry

    async def _run(self, flow: Flow[Any]) -> Any:
        return await arun_flow(flow, self._client, self._retry)

    @classmethod
    async def create(
        cls,
        training: Dataset | str,
        *,
        model: str,
        validation: Dataset | str | None = None,
        method: str = "supervised",
        hyperparameters: Mapping[str, object] | None = None,
        grader: Mapping[str, object] | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
        integrations: Sequence[Mapping[str, object]] | None = None,
        idempotency_key: str | None = None,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """Async :meth:`Job.create`."""
        plan = _CreatePlan(
            training=training,
            validation=validation,
            model=model,
            method=method,
            hyperparameters=hyperparameters,
            grader=grader,
            suffix=suffix,
            seed=seed,
            metadata=metadata,
            integrations=integrations,
            idempotency_key=idempotency_key,
            today=_today(),
        )
        resolved = resolve_async_client(client)
        raw = await arun_flow(create_flow(plan, now=time.time()), resolved, retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    async def get(
        cls,
        job_id: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """Async :meth:`Job.get`."""
        raw = await arun_flow(_single(_retrieve(job_id)), resolve_async_client(client), retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    async def list(
        cls,
        *,
        limit: int | None = None,
        metadata: Mapping[str, str] | None = None,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> builtins.list[AsyncJob]:
        """Async :meth:`Job.list`."""
        raws = await arun_flow(list_flow(limit, metadata), resolve_async_client(client), retry)
        return [cls(raw, client=client, retry=retry) for raw in raws]

    async def refresh(self) -> AsyncJob:
        """Async :meth:`Job.refresh`."""
        self._raw = await self._run(_single(_retrieve(self.id)))
        return self

    async def events(self) -> builtins.list[Event]:
        """Async :meth:`Job.events`."""
        result: builtins.list[Event] = await self._run(events_flow(self.id))
        return result

    async def checkpoints(self) -> builtins.list[Checkpoint]:
        """Async :meth:`Job.checkpoints`."""
        result: builtins.list[Checkpoint] = await self._run(checkpoints_flow(self.id))
        return result

    async def metrics(self) -> builtins.list[MetricsRow]:
        """Async :meth:`Job.metrics`."""
        result: builtins.list[MetricsRow] = await self._run(metrics_flow(self.id))
        return result

    async def metrics_summary(self) -> MetricsSummary:
        """Async :meth:`Job.metrics_summary`."""
        result: MetricsSummary = await self._run(summary_flow(self.id))
        return result

    async def wait(
        self,
        *,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        progress: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> AsyncTunedModel:
        """Async :meth:`Job.wait` (returns an :class:`AsyncTunedModel`)."""
        watch = self._watch(timeout, poll_interval, progress, on_event)
        raw: FineTuningJob = await self._run(watch)
        from ..models._tuned_model import AsyncTunedModel

        return AsyncTunedModel(
            cast("str", raw.fine_tuned_model),
            client=self._user_client,
            job_id=raw.id,
            base_model=raw.model,
        )

    async def cancel(self) -> AsyncJob:
        """Async :meth:`Job.cancel`."""
        self._raw = await self._run(control_flow("cancel", self.id))
        return self

    async def pause(self) -> AsyncJob:
        """Async :meth:`Job.pause`."""
        self._raw = await self._run(control_flow("pause", self.id))
        return self

    async def resume(self) -> AsyncJob:
        """Async :meth:`Job.resume`."""
        self._raw = await self._run(control_flow("resume", self.id))
        return self

    async def spec(self, *, tier: str | None = None) -> JobSpec:
        """See :meth:`Job.spec`."""
        flow = spec_flow(
            self._raw, method=self.method, hyperparameters=self.hyperparameters, tier=tier
        )
        return cast("JobSpec", await self._run(flow))

    @classmethod
    async def create_from_spec(
        cls,
        spec: JobSpec,
        training: Dataset,
        *,
        validation: Dataset | None = None,
        idempotency_key: str | None = None,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """See :meth:`Job.create_from_spec`."""
        spec.check_data(training.content_hash(), validation.content_hash() if validation else None)
        return await cls.create(
            training,
            validation=validation,
            idempotency_key=idempotency_key,
            client=client,
            retry=retry,
            **spec.create_options(),
        )


_Control = Literal["cancel", "pause", "resume"]

#: The statuses that show a control request already took effect.
_DONE_WHEN: Final[dict[str, frozenset[str]]] = {
    "cancel": frozenset({"cancelled"}),
    "pause": frozenset({"paused"}),
    "resume": frozenset({"validating_files", "queued", "running"}),
}


def _action(name: _Control, job_id: str) -> Request:
    def call(c: Any) -> object:
        jobs = c.fine_tuning.jobs
        method: Callable[[str], object] = {
            "cancel": jobs.cancel,
            "pause": jobs.pause,
            "resume": jobs.resume,
        }[name]
        return method(job_id)

    return Request(f"{name} fine-tuning job {job_id}", call)


def control_flow(name: _Control, job_id: str) -> Flow[FineTuningJob]:
    """Cancel, pause or resume; a retry after an ambiguous failure checks before re-sending.

    Sent twice, a control request fails the second time (the job is already cancelled, say),
    so after a lost reply the job's status says whether the first one took effect.
    """

    def already() -> Flow[FineTuningJob | None]:
        job: FineTuningJob = yield _retrieve(job_id)
        return job if _status(job) in _DONE_WHEN[name] else None

    result: FineTuningJob = yield once(
        f"{name} fine-tuning job {job_id}", _action(name, job_id), already
    )
    return result


def _single(request: Request) -> Flow[Any]:
    result = yield request
    return result
