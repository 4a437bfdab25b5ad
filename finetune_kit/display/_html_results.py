"""HTML of results: evaluations, comparisons, training metrics, jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._html import Markup, badge, bar, card, esc, heading, number, table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..evaluate import Comparison, Evaluation
    from ..jobs._job import Checkpoint, Event, Job, MetricsSummary
    from ..jobs._raw import JobView

__all__ = ["async_job", "comparison", "evaluation", "job", "job_parts", "metrics_summary"]

_NO_ANSWER: Final = "(none)"
_SHADE: Final = (76, 120, 168)  # the bar colour, as RGB for the confusion grid's shading
_STATUS_COLORS: Final = {
    "succeeded": "#1e8449",
    "failed": "#c0392b",
    "cancelled": "#7f8c8d",
    "paused": "#b9770e",
}
#: Checkpoints listed in a job's HTML (the service keeps three).
MAX_CHECKPOINTS: Final = 10


def confusion_grid(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Markup:
    """A confusion matrix as a grid shaded by count (rows: true label; columns: predicted)."""
    most = max((c for row in matrix for c in row), default=0) or 1
    cell = "padding: 2px 8px; text-align: right; border: 1px solid #ddd"
    head = "".join(f'<th style="{cell}">{esc(name)}</th>' for name in [*labels, _NO_ANSWER])
    body = []
    for label, row in zip(labels, matrix, strict=True):
        tds = []
        for count in row:
            alpha = count / most
            ink = "white" if alpha > 0.5 else "black"
            shade = f"background: rgba({_SHADE[0]}, {_SHADE[1]}, {_SHADE[2]}, {alpha:.2f})"
            tds.append(f'<td style="{cell}; {shade}; color: {ink}">{count:,}</td>')
        head_cell = f'<th style="{cell}; text-align: left">{esc(label)}</th>'
        body.append(f"<tr>{head_cell}{''.join(tds)}</tr>")
    return Markup(
        '<table style="border-collapse: collapse; margin: 4px 0">'
        f'<thead><tr><th style="{cell}">true \\ predicted</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def evaluation(result: Evaluation) -> Markup:
    """Headline scores, per-label metrics and the shaded confusion matrix."""
    summary = (
        f"accuracy {result.accuracy:.3f} \u00b7 macro-F1 {result.macro_f1:.3f} \u00b7 "
        f"abstained {result.abstained_rate:.1%} \u00b7 failed {result.failed_rate:.1%} \u00b7 "
        f"tokens {result.usage.total_tokens:,}"
    )
    metrics = table(
        ["label", "precision", "recall", "f1", "support"],
        [
            [m.label, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", m.support]
            for m in result.per_label
        ],
    )
    return card(
        f"Evaluation of {result.model or 'a model'} on {result.n} examples",
        summary,
        metrics,
        heading("Confusion matrix"),
        confusion_grid(result.labels, result.confusion),
    )


def comparison(result: Comparison) -> Markup:
    """Models side by side, the best value of each row in bold."""
    frame = result.scores()
    names = result.models
    rows: list[list[object]] = [["examples", *(e.n for e in result.evaluations)]]
    for metric, values in frame.items():
        present = [v for v in values if v is not None]
        # Lower is better only for the rates of unanswered examples.
        best = (min if metric in ("abstained", "failed") else max)(present, default=None)
        cells: list[object] = []
        for v in values:
            text = esc(number(v))
            cells.append(Markup(f"<b>{text}</b>") if v is not None and v == best else text)
        rows.append([metric, *cells])
    parts: list[object] = [table(["", *names], rows)]
    if len({e.n for e in result.evaluations}) > 1:
        parts.append("note: the evaluations cover different numbers of examples")
    return card("Comparison", *parts)


def metrics_summary(summary: MetricsSummary) -> Markup:
    """The verdict, per-epoch losses and the best checkpoint."""
    flag = badge("overfitting", "#c0392b") if summary.overfitting else badge("ok", "#1e8449")
    unit = "epoch" if summary.epochs_known else "quarter"
    rows = [
        [i, number(t, 4), number(v, 4)]
        for i, (t, v) in enumerate(
            zip(summary.epoch_train_loss, summary.epoch_valid_loss, strict=True), start=1
        )
    ]
    parts: list[object] = [
        Markup(f"{flag} {esc(summary.message)}"),
        f"{summary.steps:,} steps \u00b7 final training loss {number(summary.final_train_loss, 4)}"
        f" \u00b7 final validation loss {number(summary.final_valid_loss, 4)}",
    ]
    if rows:
        parts.append(table([unit, "training loss", "validation loss"], rows))
    if summary.best_checkpoint is not None:
        best = summary.best_checkpoint
        parts.append(f"best checkpoint: {best.model} (step {best.step:,})")
    return card("Training metrics", *parts)


# --- jobs -------------------------------------------------------------------------------------


def job_parts(
    job: JobView,
    *,
    events: Sequence[Event] = (),
    checkpoints: Sequence[Checkpoint] = (),
    summary: MetricsSummary | None = None,
) -> Markup:
    """A job's card from what is known about it (pure: nothing is fetched here)."""
    color = _STATUS_COLORS.get(job.status, "#4c78a8")
    parts: list[object] = [
        Markup(f"{badge(job.status, color)} {esc(job.method)} fine-tuning of {esc(job.model)}")
    ]
    rows: list[list[object]] = []
    if job.fine_tuned_model:
        rows.append(["fine-tuned model", job.fine_tuned_model])
    if job.trained_tokens is not None:
        rows.append(["trained tokens", f"{job.trained_tokens:,}"])
    for name, value in job.hyperparameters.items():
        rows.append([name, value])
    error = job.error
    if error is not None and (error.code or error.message):
        rows.append(["error", f"{error.code or ''}: {error.message or ''}".strip(": ")])
    if rows:
        parts.append(table(None, rows))
    latest = _latest_metrics(events)
    if latest is not None:
        step, total = _as_float(latest.get("step")), _as_float(latest.get("total_steps"))
        if step is not None and total:
            parts.append(Markup(f"step {step:,.0f} of {total:,.0f} {bar(step / total)}"))
        shown = {k: v for k, v in latest.items() if k not in ("step", "total_steps")}
        numbers = [
            [k, number(_as_float(v), 4)] for k, v in shown.items() if _as_float(v) is not None
        ]
        if numbers:
            parts += [heading("Latest metrics"), table(None, numbers)]
    if checkpoints:
        parts += [
            heading("Checkpoints"),
            table(
                ["step", "model", "validation loss"],
                [
                    [c.step, c.model, number(_checkpoint_loss(c), 4)]
                    for c in checkpoints[-MAX_CHECKPOINTS:]
                ],
                numeric_from=2,
            ),
        ]
    if summary is not None and summary.steps:
        flag = badge("overfitting", "#c0392b") if summary.overfitting else badge("ok", "#1e8449")
        parts.append(Markup(f"{flag} {esc(summary.message)}"))
    return card(f"Fine-tuning job {job.id}", *parts)


def job(job: Job) -> Markup:
    """A job's card with its latest events, checkpoints and metrics summary, fetched now.

    A notebook calls this when it shows the job; when fetching fails the card says why and
    shows what the job object already knows, rather than breaking the cell's output.
    """
    import openai

    from .._exceptions import FinetuneKitError

    try:
        events = job.events()
        checkpoints = job.checkpoints()
        summary = job.metrics_summary()
    except (FinetuneKitError, openai.OpenAIError) as exc:
        note = Markup(f"<div>could not fetch metrics: {esc(type(exc).__name__)}: {esc(exc)}</div>")
        return Markup(job_parts(job) + note)
    return job_parts(job, events=events, checkpoints=checkpoints, summary=summary)


def async_job(job: JobView) -> Markup:
    """An async job's card: what the object knows, with no request made.

    A notebook's display hook is synchronous and runs inside the kernel's event loop, so it
    cannot await the job's events; the card says how to get them.
    """
    note = Markup(
        "<div>events, checkpoints and metrics: <code>await job.events()</code>, "
        "<code>await job.checkpoints()</code>, <code>await job.metrics_summary()</code></div>"
    )
    return Markup(job_parts(job) + note)


def _latest_metrics(events: Sequence[Event]) -> dict[str, Any] | None:
    for event in reversed(events):
        if event.type == "metrics" and event.data:
            return event.data
    return None


def _checkpoint_loss(checkpoint: Checkpoint) -> float | None:
    m = checkpoint.metrics
    return m.full_valid_loss if m.full_valid_loss is not None else m.valid_loss


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
