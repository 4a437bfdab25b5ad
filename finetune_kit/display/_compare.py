"""Comparison: what :func:`finetune_kit.compare` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..evaluate import Evaluation

__all__ = ["Comparison"]


class Comparison(str):
    """Several evaluations side by side.

    It *is* the text table :func:`~finetune_kit.compare` always returned (``print`` it, search
    it, write it to a file), and it also renders as an HTML table in notebooks, draws itself
    with :meth:`plot` and converts to a DataFrame with :meth:`to_pandas`.

    Attributes:
        evaluations: the evaluations compared, in column order.
    """

    evaluations: tuple[Evaluation, ...]

    def __new__(cls, table: str, evaluations: Sequence[Evaluation]) -> Comparison:
        self = super().__new__(cls, table)
        self.evaluations = tuple(evaluations)
        return self

    def __getnewargs__(self) -> tuple[str, tuple[Evaluation, ...]]:  # type: ignore[override]
        # copy and pickle rebuild the object through __new__, which needs both arguments.
        return (str(self), self.evaluations)

    @property
    def models(self) -> list[str]:
        """Each evaluation's column heading (its model, or ``model N`` when unnamed)."""
        return [e.model or f"model {i + 1}" for i, e in enumerate(self.evaluations)]

    def scores(self) -> dict[str, list[float | None]]:
        """Metric -> one value per evaluation: the scores, the rates, then F1 per label.

        A label an evaluation does not know gets None.
        """
        labels = list(dict.fromkeys(label for e in self.evaluations for label in e.labels))
        table: dict[str, list[float | None]] = {
            "accuracy": [e.accuracy for e in self.evaluations],
            "macro-F1": [e.macro_f1 for e in self.evaluations],
            "abstained": [e.abstained_rate for e in self.evaluations],
            "failed": [e.failed_rate for e in self.evaluations],
        }
        for label in labels:
            table[f"F1 {label}"] = [_f1(e, label) for e in self.evaluations]
        return table

    def _repr_html_(self) -> str:
        from ._html_results import comparison

        return comparison(self)

    def plot(self, ax: Any = None) -> Any:
        """Bars per metric, one colour per model; returns the matplotlib Axes drawn on."""
        from ._plot import comparison

        return comparison(self, ax)

    def to_pandas(self) -> Any:
        """A DataFrame with a row per metric and a column per model."""
        from ._frames import comparison_frame

        return comparison_frame(self)


def _f1(evaluation: Evaluation, label: str) -> float | None:
    try:
        return evaluation.metrics(label).f1
    except KeyError:
        return None
