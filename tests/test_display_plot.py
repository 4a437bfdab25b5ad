"""Plots: each returns the Axes it drew on, and what it drew are the object's own numbers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Checkpoint, Dataset, Evaluation, MetricsRow, compare
from finetune_kit.jobs._job import summarize_metrics
from tests.fake_openai import checkpoint

if TYPE_CHECKING:
    from collections.abc import Iterator

    from finetune_kit import MetricsSummary

matplotlib = pytest.importorskip("matplotlib", reason="the plot extra is not installed")
matplotlib.use("Agg")
pyplot = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    pyplot.close("all")


def _checkpoint(step: int, full_valid_loss: float) -> Checkpoint:
    model = "ft:gpt-4o-mini:acme::x"
    return checkpoint(step, model, created_at=step, full_valid_loss=full_valid_loss)


def _summary(*, overfit: bool, accuracy: bool = False) -> MetricsSummary:
    train = [2.0, 1.5, 1.0, 0.8, 0.6, 0.4]
    valid = [2.1, 1.6, 1.2, 1.3, 1.5, 1.8] if overfit else [2.1, 1.6, 1.2, 1.1, 1.0, 0.9]
    rows = [
        MetricsRow(
            step=i + 1,
            train_loss=t,
            valid_loss=v,
            train_accuracy=0.5 + i / 20 if accuracy else None,
        )
        for i, (t, v) in enumerate(zip(train, valid, strict=True))
    ]
    full = [1.25, 1.4, 1.7] if overfit else [1.25, 1.1, 0.95]
    return summarize_metrics(
        rows, [_checkpoint(s, f) for s, f in zip((2, 4, 6), full, strict=True)], n_epochs=3
    )


def _xy(line: Any) -> tuple[list[float], list[float]]:
    return [float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()]


def _line(ax: Any, label: str) -> Any:
    return next(line for line in ax.get_lines() if line.get_label() == label)


def _column(summary: MetricsSummary, name: str) -> tuple[list[float], list[float]]:
    pairs = [(r.step, getattr(r, name)) for r in summary.rows if getattr(r, name) is not None]
    return [float(x) for x, _ in pairs], [float(y) for _, y in pairs]


def test_metrics_plot_draws_the_losses_of_every_step() -> None:
    summary = _summary(overfit=True)

    ax = summary.plot()

    assert summary.overfitting
    assert len(summary.rows) == 6
    assert _xy(_line(ax, "training loss")) == _column(summary, "train_loss")
    assert _xy(_line(ax, "validation loss (batch)")) == _column(summary, "valid_loss")
    assert _xy(_line(ax, "full validation loss")) == ([2.0, 4.0, 6.0], [1.25, 1.4, 1.7])
    # One dotted vertical line per checkpoint, at its step.
    marks = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert [list(m.get_xdata()) for m in marks] == [[2, 2], [4, 4], [6, 6]]
    # The turning point: where the full validation loss was lowest before it rose.
    turn = _line(ax, "validation loss turns up")
    assert list(turn.get_xdata()) == [2.0, 2.0]
    # The best checkpoint is marked at its step and loss.
    assert [list(p) for p in ax.collections[0].get_offsets()] == [[2.0, 1.25]]
    labels = ax.get_legend().get_texts()
    assert {"checkpoint", "best checkpoint (step 2)"} <= {t.get_text() for t in labels}


def test_metrics_plot_draws_on_the_given_axes_without_a_turn_when_healthy() -> None:
    summary = _summary(overfit=False)
    _, given = pyplot.subplots()

    ax = summary.plot(ax=given)

    assert ax is given
    assert not summary.overfitting
    assert "validation loss turns up" not in ax.get_legend_handles_labels()[1]
    assert len(ax.figure.axes) == 1  # no accuracy reported, no second axis


def test_metrics_plot_puts_accuracy_on_a_second_axis() -> None:
    summary = _summary(overfit=False, accuracy=True)

    ax = summary.plot()

    twin = next(other for other in ax.figure.axes if other is not ax)
    assert _xy(_line(twin, "training accuracy")) == _column(summary, "train_accuracy")
    assert twin.get_ylim() == (0.0, 1.05)
    assert "training accuracy" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_turning_point_without_full_validation_uses_the_epochs() -> None:
    rows = [
        MetricsRow(step=s, train_loss=2.0 - s / 10, valid_loss=v)
        for s, v in zip(range(1, 7), [2.0, 1.8, 1.2, 1.1, 1.6, 1.9], strict=True)
    ]
    summary = summarize_metrics(rows, n_epochs=3)

    ax = summary.plot()

    assert summary.overfitting
    assert list(_line(ax, "validation loss turns up").get_xdata()) == [4.0, 4.0]


def test_evaluation_plot_is_the_confusion_matrix() -> None:
    evaluation = Evaluation.from_predictions(
        ["cat", "cat", "dog", "dog", "bird"], ["cat", "dog", "dog", None, "cat"], model="m"
    )

    ax = evaluation.plot()

    image = ax.images[0].get_array()
    assert image.tolist() == [list(row) for row in evaluation.confusion]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird", "(none)"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in ax.texts] == [str(c) for row in evaluation.confusion for c in row]


def test_dataset_stats_plot_is_the_token_histogram() -> None:
    data = Dataset.from_labels([f"text {'word ' * (i * i)}" for i in range(12)], ["a", "b"] * 6)
    stats = data.stats("gpt-4o-mini")

    ax = stats.plot()

    hist = stats.token_histogram
    assert sum(hist.counts) == stats.n_examples
    assert [p.get_height() for p in ax.patches] == list(hist.counts)
    assert [p.get_x() for p in ax.patches] == list(hist.edges[:-1])
    assert [p.get_width() for p in ax.patches] == [
        b - a for a, b in zip(hist.edges, hist.edges[1:], strict=False)
    ]
    # The context (65,536) is far beyond every example: named in the legend, not drawn.
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("training context (65,536 tokens), ")


def test_dataset_stats_plot_marks_a_context_within_reach() -> None:
    texts = [f"text {'word ' * (i * 40)}" for i in range(12)]
    stats = Dataset.from_labels(texts, ["a", "b"] * 6).stats("gpt-3.5-turbo-0125")
    near = stats.model_copy(update={"training_context": 300})

    ax = near.plot()

    limit = ax.get_lines()[0]
    assert list(limit.get_xdata()) == [300, 300]


def test_comparison_plot_puts_models_side_by_side() -> None:
    base = Evaluation.from_predictions(["a", "b", "b"], ["a", "a", "a"], model="base")
    tuned = Evaluation.from_predictions(["a", "b", "b"], ["a", "b", "b"], model="tuned")
    result = compare(base, tuned)

    ax = result.plot()

    scores = result.scores()
    heights = [p.get_height() for p in ax.patches]
    n = len(scores)
    assert heights[:n] == [v[0] for v in scores.values()]
    assert heights[n:] == [v[1] for v in scores.values()]
    assert ax.get_legend_handles_labels()[1] == ["base", "tuned"]


def test_without_matplotlib_plot_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    evaluation = Evaluation.from_predictions(["a"], ["a"])

    with pytest.raises(ImportError, match=r'pip install "finetune-kit\[plot\]"'):
        evaluation.plot()
    with pytest.raises(ImportError, match=r"finetune-kit\[plot\]"):
        _summary(overfit=False).plot()


def test_metrics_plot_of_an_empty_summary_draws_nothing() -> None:
    ax = summarize_metrics([]).plot()

    assert ax.get_lines() == []
    assert ax.get_legend() is None


def test_best_checkpoint_falls_back_to_its_batch_validation_loss() -> None:
    rows = [MetricsRow(step=s, train_loss=1.0 / s) for s in range(1, 5)]
    best = checkpoint(4, "ft:m::x", valid_loss=0.7)

    ax = summarize_metrics(rows, [best], n_epochs=2).plot()

    assert [list(p) for p in ax.collections[0].get_offsets()] == [[4.0, 0.7]]


def test_many_steps_are_drawn_raw_and_as_trailing_means() -> None:
    losses = [2.0 if s % 2 else 1.0 for s in range(1, 201)]
    accuracies = [float(s % 2) for s in range(1, 201)]
    rows = [
        MetricsRow(step=s, train_loss=loss, train_accuracy=acc)
        for s, loss, acc in zip(range(1, 201), losses, accuracies, strict=True)
    ]
    summary = summarize_metrics(rows, n_epochs=2)

    ax = summary.plot()

    def trailing(values: list[float], k: int) -> list[float]:
        return [sum(values[max(0, i - k + 1) : i + 1]) / min(i + 1, k) for i in range(len(values))]

    steps = [float(s) for s in range(1, 201)]
    assert _xy(_line(ax, "training loss")) == (steps, losses)
    assert _xy(_line(ax, "training loss, mean of 10 steps")) == (steps, trailing(losses, 10))
    twin = next(other for other in ax.figure.axes if other is not ax)
    accuracy = _line(twin, "training accuracy, mean of 10 steps")
    assert _xy(accuracy) == (steps, trailing(accuracies, 10))
    # The loss axis fits the means, not the raw spikes.
    assert ax.get_ylim()[1] == pytest.approx(max(trailing(losses, 10)) * 1.15)


def test_batch_validation_accuracy_gives_way_to_the_full_one() -> None:
    rows = [MetricsRow(step=s, train_loss=1.0, valid_mean_token_accuracy=0.5) for s in (1, 2)]
    full = checkpoint(2, "ft:m::x", full_valid_mean_token_accuracy=0.8)

    batch_only = summarize_metrics(rows).plot()
    with_full = summarize_metrics(rows, [full]).plot()

    def twin_labels(ax: Any) -> list[str]:
        twin = next(other for other in ax.figure.axes if other is not ax)
        return [str(line.get_label()) for line in twin.get_lines()]

    assert twin_labels(batch_only) == ["validation accuracy (batch)"]
    assert twin_labels(with_full) == ["full validation accuracy"]
