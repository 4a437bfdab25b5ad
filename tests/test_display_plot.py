"""Plots: each returns the Axes it drew on, and what it drew are the object's own numbers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Checkpoint, Dataset, Evaluation, MetricsRow, compare
from finetune_kit.display._plot import epoch_steps
from finetune_kit.jobs._job import summarize_metrics

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


def _summary(*, overfit: bool) -> MetricsSummary:
    train = [2.0, 1.5, 1.0, 0.8, 0.6, 0.4]
    valid = [2.1, 1.6, 1.2, 1.3, 1.5, 1.8] if overfit else [2.1, 1.6, 1.2, 1.1, 1.0, 0.9]
    rows = [
        MetricsRow(step=i + 1, train_loss=t, valid_loss=v)
        for i, (t, v) in enumerate(zip(train, valid, strict=True))
    ]
    best = Checkpoint(
        id="ckpt-2",
        step=4,
        model="ft:gpt-4o-mini:acme::x:ckpt-step-4",
        created_at=1,
        metrics=MetricsRow(step=4, full_valid_loss=1.25),
    )
    return summarize_metrics(rows, [best], n_epochs=3)


def _xy(line: Any) -> tuple[list[float], list[float]]:
    return [float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()]


def test_metrics_plot_draws_the_epoch_losses_by_step() -> None:
    summary = _summary(overfit=True)

    ax = summary.plot()

    assert summary.overfitting
    train, valid = ax.get_lines()[:2]
    assert _xy(train) == (epoch_steps(summary), summary.epoch_train_loss)
    assert _xy(valid) == (epoch_steps(summary), summary.epoch_valid_loss)
    assert epoch_steps(summary) == [2.0, 4.0, 6.0]
    # The turning point: a vertical line where validation loss was lowest.
    turn = ax.get_lines()[2]
    assert list(turn.get_xdata()) == [4.0, 4.0]
    # The best checkpoint is marked at its step and loss.
    assert [list(p) for p in ax.collections[0].get_offsets()] == [[4.0, 1.25]]
    labels = ax.get_legend_handles_labels()[1]
    assert "validation loss turns up" in labels
    assert "best checkpoint (step 4)" in labels


def test_metrics_plot_draws_on_the_given_axes_without_a_turn_when_healthy() -> None:
    summary = _summary(overfit=False)
    _, given = pyplot.subplots()

    ax = summary.plot(ax=given)

    assert ax is given
    assert not summary.overfitting
    assert len(ax.get_lines()) == 2
    assert "validation loss turns up" not in ax.get_legend_handles_labels()[1]


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


def test_dataset_stats_plot_shows_token_lengths_and_the_context() -> None:
    data = Dataset.from_labels([f"text {'word ' * i}" for i in range(12)], ["a", "b"] * 6)
    stats = data.stats("gpt-4o-mini")

    ax = stats.plot()

    d = stats.tokens_per_example
    assert [p.get_width() for p in ax.patches] == [d.min, d.p10, d.p50, d.mean, d.p90, d.max]
    limit = ax.get_lines()[0]
    assert list(limit.get_xdata()) == [stats.training_context] * 2


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
    best = Checkpoint(
        id="c",
        step=4,
        model="ft:m::x:ckpt-step-4",
        created_at=1,
        metrics=MetricsRow(step=4, valid_loss=0.7),
    )

    ax = summarize_metrics(rows, [best], n_epochs=2).plot()

    assert [list(p) for p in ax.collections[0].get_offsets()] == [[4.0, 0.7]]
