"""Plots with matplotlib (the ``plot`` extra), imported inside each call.

Each function draws on the caller's Axes when given one, else on a new figure's, and returns
the Axes, like pandas' and seaborn's ``plot`` functions. Nothing here picks a backend:
matplotlib chooses Agg by itself where there is no display, and the inline backend in Jupyter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._deps import optional

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..datasets._reports import DatasetStats
    from ..evaluate import Comparison, Evaluation
    from ..jobs._job import MetricsRow, MetricsSummary

__all__ = [
    "comparison",
    "dataset_stats",
    "epoch_steps",
    "evaluation",
    "metrics_summary",
    "smooth",
    "smoothing_window",
    "turning_point",
]


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


def _series(rows: Sequence[MetricsRow], name: str) -> tuple[list[int], list[float]]:
    """The steps and values of one metric, skipping the steps that did not report it."""
    pairs = [(r.step, v) for r in rows if (v := getattr(r, name)) is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def turning_point(summary: MetricsSummary) -> tuple[float, float] | None:
    """(step, loss) where validation loss was lowest before it rose, when the job overfit.

    The full validation loss (computed on the whole file, at the epochs' ends) when the job
    has it; else the per-epoch validation loss at its epoch's last step.
    """
    if not summary.overfitting:
        return None
    steps, full = _series(summary.rows, "full_valid_loss")
    if len(full) >= 2:
        i = min(range(len(full)), key=full.__getitem__)
        return float(steps[i]), full[i]
    valid = [
        (x, y)
        for x, y in zip(epoch_steps(summary), summary.epoch_valid_loss, strict=True)
        if y is not None
    ]
    return min(valid, key=lambda xy: xy[1]) if valid else None


#: About this many points per smoothing window: per-step metrics of small batches are noisy.
_SMOOTHING_POINTS = 20


def smoothing_window(n: int) -> int:
    """Steps averaged per point of a smoothed curve over ``n`` steps (1: no smoothing)."""
    return max(1, n // _SMOOTHING_POINTS)


def smooth(values: Sequence[float], window: int) -> list[float]:
    """The trailing mean of ``window`` values at each point (fewer at the start)."""
    if window <= 1:
        return list(values)  # exactly as reported, without a running sum's rounding
    out: list[float] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def metrics_summary(summary: MetricsSummary, ax: Any = None) -> Any:
    """Losses by step; accuracies on a second axis; checkpoints, the best one, the turn.

    Every step's loss is drawn as reported; over many steps, faintly, under its trailing mean
    (the raw curve of small batches is mostly noise), and the loss axis then fits the means.
    """
    ax = _axes(ax)
    window = smoothing_window(len(summary.rows))
    tops: list[float] = []
    for name, label, color in (
        ("train_loss", "training loss", "tab:blue"),
        ("valid_loss", "validation loss (batch)", "tab:orange"),
    ):
        xs, ys = _series(summary.rows, name)
        if not xs:
            continue
        faint = {"alpha": 0.2, "linewidth": 0.8} if window > 1 else {"linewidth": 1.5}
        ax.plot(xs, ys, label=label, color=color, **faint)
        if window > 1:
            means = smooth(ys, window)
            ax.plot(xs, means, label=f"{label}, mean of {window} steps", color=color)
            tops.append(max(means))
    xs, ys = _series(summary.rows, "full_valid_loss")
    if xs:
        ax.plot(xs, ys, label="full validation loss", color="tab:brown", marker="o")
        tops.append(max(ys))
    if window > 1 and tops:
        ax.set_ylim(0, max(tops) * 1.15)
    for i, checkpoint in enumerate(summary.checkpoints):
        ax.axvline(
            checkpoint.step,
            color="grey",
            linestyle=":",
            linewidth=1,
            label="checkpoint" if i == 0 else None,
        )
    turn = turning_point(summary)
    if turn is not None:
        ax.axvline(turn[0], color="tab:red", linestyle="--", label="validation loss turns up")
        ax.annotate(
            "overfitting from here",
            turn,
            textcoords="offset points",
            xytext=(5, 10),
            color="tab:red",
        )
    _best_checkpoint(summary, ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training metrics" + (" (overfitting)" if summary.overfitting else ""))
    handles, labels = ax.get_legend_handles_labels()
    accuracy = _accuracy_axes(summary, ax, window)
    if accuracy is not None:
        more = accuracy.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        # Below the plot: losses fall to the lower right while accuracies rise to the upper
        # right, so no corner inside is free.
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=2,
            fontsize=8,
            frameon=False,
        )
    return ax


def _best_checkpoint(summary: MetricsSummary, ax: Any) -> None:
    best = summary.best_checkpoint
    if best is None:
        return
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


def _accuracy_axes(summary: MetricsSummary, ax: Any, window: int) -> Any:
    """Mean token accuracies on a twin y axis (0 to 1), when the job reported any.

    Per-step accuracies are drawn as their trailing means when ``window`` > 1: a batch of one
    example scores 0 or 1, which as a raw curve hides everything else. The batch validation
    accuracy only when the job computed no full validation accuracy.
    """
    full = _series(summary.rows, "full_valid_mean_token_accuracy")
    names = [("train_accuracy", "training accuracy", "tab:purple")]
    if not full[0]:  # the batch figure only where there is no full one: it is the noisier
        names.append(("valid_mean_token_accuracy", "validation accuracy (batch)", "tab:olive"))
    series = [(label, color, _series(summary.rows, name)) for name, label, color in names]
    if not any(xs for _, _, (xs, _) in series) and not full[0]:
        return None
    twin = ax.twinx()
    for label, color, (xs, ys) in series:
        if xs:
            suffix = f", mean of {window} steps" if window > 1 else ""
            twin.plot(
                xs,
                smooth(ys, window),
                linestyle="--",
                linewidth=1,
                color=color,
                label=label + suffix,
            )
    if full[0]:
        twin.plot(
            *full, linestyle="--", marker="s", color="tab:cyan", label="full validation accuracy"
        )
    twin.set_ylim(0, 1.05)  # a curve at 1.0 stays visible
    twin.set_ylabel("mean token accuracy")
    return twin


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
    """A histogram of tokens per example, and the model's training context."""
    ax = _axes(ax)
    hist = stats.token_histogram
    if hist.counts:
        widths = [b - a for a, b in zip(hist.edges, hist.edges[1:], strict=False)]
        ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color="tab:blue")
        longest = hist.edges[-1]
    else:
        longest = 0
    context = stats.training_context
    label = f"training context ({context:,} tokens)"
    if longest and context > 2 * longest:
        # Marking a limit far right of every example would squeeze the bars into a sliver:
        # say where it is instead.
        label += f", {context / max(stats.tokens_per_example.max, 1):,.0f}x the longest example"
        ax.plot([], [], color="tab:red", linestyle="--", label=label)
    else:
        ax.axvline(context, color="tab:red", linestyle="--", label=label)
    ax.set_xlabel(f"tokens per example ({stats.encoding})")
    ax.set_ylabel("examples")
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
