"""Training metrics: the result file (plain or base64 CSV), metrics events, the summary.

Pure functions over the models of :mod:`._models`; the flows that fetch their inputs are in
:mod:`._flows`.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
from typing import TYPE_CHECKING, cast

from ._models import MetricsSummary, _number, _row

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._models import Checkpoint, Event, MetricsRow

__all__ = ["metrics_from_events", "parse_metrics_csv", "summarize_metrics"]


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
    # Kept whole for plots and tables: one small row per step, as the service reported them.
    by_step = tuple(sorted(checkpoints, key=lambda c: c.step))
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
            rows=(),
            checkpoints=by_step,
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
        rows=tuple(rows),
        checkpoints=by_step,
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
