"""Plots with matplotlib (the ``plot`` extra), imported inside each call.

Each function draws on the caller's Axes when given one, else on a new figure's, and returns
the Axes, like pandas' and seaborn's ``plot`` functions. Nothing here picks a backend:
matplotlib chooses Agg by itself where there is no display, and the inline backend in Jupyter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._deps import optional
from ._html import quantiles

if TYPE_CHECKING:
    from ..datasets._reports import DatasetStats
    from ..evaluate import Evaluation
    from ..jobs._job import MetricsSummary
    from ._compare import Comparison

__all__ = ["comparison", "dataset_stats", "epoch_steps", "evaluation", "metrics_summary"]


def _axes(ax: Any) -> Any:
    pyplot = optional("matplotlib.pyplot", "plot")
    if ax is not None:
        return ax
    # Our own figure lays itself out (long tick labels and titles stay inside it); a caller's
    # figure keeps the caller's layout.
    _, new = pyplot.subplots(layout="constrained")
    return new


def epoch_steps(summary: MetricsSummary) -> list[float]:
    """The step at which each epoch (or quarter of the run) of a summary ends.

    The summary splits the run into parts of equal length (see ``summarize_metrics``), so
    part ``k`` of ``n`` ends at ``steps * k / n``.
    """
    n = len(summary.epoch_train_loss)
    return [summary.steps * k / n for k in range(1, n + 1)]


def metrics_summary(summary: MetricsSummary, ax: Any = None) -> Any:
    """Training and validation loss per epoch, by step; best checkpoint and turning point."""
    ax = _axes(ax)
    steps = epoch_steps(summary)
    unit = "epoch" if summary.epochs_known else "quarter of the run"
    train = [(x, y) for x, y in zip(steps, summary.epoch_train_loss, strict=True) if y is not None]
    valid = [(x, y) for x, y in zip(steps, summary.epoch_valid_loss, strict=True) if y is not None]
    if train:
        ax.plot(
            [x for x, _ in train],
            [y for _, y in train],
            marker="o",
            label=f"training loss (mean per {unit})",
        )
    if valid:
        ax.plot([x for x, _ in valid], [y for _, y in valid], marker="o", label="validation loss")
        if summary.overfitting:
            # Where validation loss was lowest: after this point it turns up.
            turn_x, turn_y = min(valid, key=lambda xy: xy[1])
            ax.axvline(turn_x, color="tab:red", linestyle="--", label="validation loss turns up")
            ax.annotate(
                "overfitting from here",
                (turn_x, turn_y),
                textcoords="offset points",
                xytext=(5, 10),
                color="tab:red",
            )
    best = summary.best_checkpoint
    if best is not None:
        loss = best.metrics.full_valid_loss
        if loss is None:
            loss = best.metrics.valid_loss
        if loss is not None:
            ax.scatter(
                [best.step],
                [loss],
                marker="*",
                s=150,
                color="tab:green",
                zorder=3,
                label=f"best checkpoint (step {best.step:,})",
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training metrics" + (" (overfitting)" if summary.overfitting else ""))
    if train or valid:
        ax.legend()
    return ax


def evaluation(result: Evaluation, ax: Any = None) -> Any:
    """The confusion matrix: true labels down, predicted labels across, counts in the cells."""
    ax = _axes(ax)
    matrix = [list(row) for row in result.confusion]
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    columns = [*result.labels, "(none)"]
    ax.set_xticks(range(len(columns)), labels=columns, rotation=45, ha="right")
    ax.set_yticks(range(len(result.labels)), labels=list(result.labels))
    most = max((c for row in matrix for c in row), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ink = "white" if most and count > most / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=ink)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{result.model or 'model'}\naccuracy {result.accuracy:.3f}", fontsize=10)
    ax.figure.colorbar(image, ax=ax)
    return ax


def dataset_stats(stats: DatasetStats, ax: Any = None) -> Any:
    """Tokens per example (min, p10, median, mean, p90, max) and the training context."""
    ax = _axes(ax)
    values = quantiles(stats.tokens_per_example)
    names = [name for name, _ in values]
    ax.barh(names, [v for _, v in values], color="tab:blue")
    ax.axvline(
        stats.training_context,
        color="tab:red",
        linestyle="--",
        label=f"training context ({stats.training_context:,})",
    )
    # The context is usually orders of magnitude above typical examples.
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel(f"tokens per example ({stats.encoding})")
    over = f", {stats.n_over_limit:,} over the limit" if stats.n_over_limit else ""
    ax.set_title(f"Tokens per example: {stats.n_examples:,} examples{over}")
    ax.legend()
    return ax


def comparison(result: Comparison, ax: Any = None) -> Any:
    """Grouped bars: one group per metric, one bar per model."""
    ax = _axes(ax)
    scores = result.scores()
    metrics = list(scores)
    models = result.models
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        offset = (i - (len(models) - 1) / 2) * width
        heights = [scores[m][i] or 0.0 for m in metrics]
        ax.bar([k + offset for k in range(len(metrics))], heights, width, label=model)
    ax.set_xticks(range(len(metrics)), labels=metrics, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    # Above the bars, where it cannot hide one (scores reach 1.0).
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False)
    return ax
