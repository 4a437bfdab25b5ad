"""What a job reports, as frozen models: events, checkpoints, metrics rows, the summary.

Also the two pure helpers every reader of a job needs: events merged in time order without
duplicates, and numbers read defensively from whatever shape the service sent them in.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict

from ..facts._jobs import STEP_METRICS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from openai.types.fine_tuning import FineTuningJobEvent
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

__all__ = ["Checkpoint", "Event", "MetricsRow", "MetricsSummary", "merge_events"]

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
        values = {name: getattr(m, name, None) for name in STEP_METRICS} if m else {}
        return cls(
            id=checkpoint.id,
            step=int(checkpoint.step_number),
            model=checkpoint.fine_tuned_model_checkpoint,
            created_at=int(checkpoint.created_at),
            metrics=_row({"step": checkpoint.step_number, **values}),
        )


class MetricsSummary(BaseModel):
    """How training went, step by step and per epoch, and whether it overfit.

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
        rows: the metrics of every step reported, by step (the checkpoints' full validation
            metrics filled in at their steps); what :meth:`plot` draws and :meth:`to_pandas`
            lists.
        checkpoints: the job's checkpoints, by step.
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
    rows: tuple[MetricsRow, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()

    def _repr_html_(self) -> str:
        from ..display import _html_results

        return _html_results.metrics_summary(self)

    def plot(self, ax: Any = None) -> Any:
        """Training and validation loss by step (and mean token accuracy, on a second y axis,
        where reported), the checkpoints, the best one, and, when the job overfit, where
        validation loss turned up. Needs matplotlib (``pip install "finetune-kit[plot]"``);
        draws on ``ax`` when given and returns the Axes drawn on."""
        from ..display import _plot

        return _plot.metrics_summary(self, ax)

    def to_pandas(self) -> Any:
        """A DataFrame with one row per step: the step's metrics (:class:`MetricsRow`'s
        fields) and ``checkpoint``, the model saved at that step, if any."""
        from ..display import _frames

        return _frames.metrics_frame(self, list(MetricsRow.model_fields))


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
