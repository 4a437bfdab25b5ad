"""Evaluation: how well a model labels a held-out split, and several models side by side.

The numbers follow the usual definitions (scikit-learn's, with ``zero_division=0``):

- **accuracy**: correct answers / all examples. An abstention or a failed request counts as
  a wrong answer, so models that abstain more cannot look better by it; the abstained and
  failed rates are reported next to it.
- per label: **precision** = correct predictions of the label / all predictions of it;
  **recall** = correct predictions / examples whose true label it is (its **support**);
  **F1** = their harmonic mean. A ratio with nothing to divide by is 0.
- **macro-F1**: the unweighted mean of F1 over the labels that occur, as true label or as
  prediction (a label nobody used does not drag the mean down).
- the **confusion matrix** has a row per true label and a column per predicted label, plus a
  last column counting the examples without an answer (abstained or failed).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ._exceptions import ClassificationError
from .classification._results import Classification, TokenUsage

if TYPE_CHECKING:
    from .classification._prompts import Message, TextInput

__all__ = ["Comparison", "Evaluation", "LabelMetrics", "compare", "evaluation_items", "input_text"]

_NO_ANSWER = "(none)"


class LabelMetrics(BaseModel):
    """Precision, recall and F1 of one label, and how many examples carry it."""

    model_config = ConfigDict(frozen=True)

    label: str
    precision: float
    recall: float
    f1: float
    support: int


class Evaluation(BaseModel):
    """The scores of one model on one labelled set; ``str()`` prints them as a table.

    Attributes:
        model: the model evaluated, when known.
        labels: the label set, in the order of :attr:`per_label` and the confusion matrix.
        n: examples evaluated.
        accuracy: correct / n (abstentions and failures count as wrong).
        macro_f1: mean F1 over the labels that occur.
        per_label: one :class:`LabelMetrics` per label.
        confusion: ``confusion[i][j]`` = examples of true label ``labels[i]`` predicted as
            ``labels[j]``; the last column counts those without an answer.
        abstained: examples where the model abstained (``abstain_below``).
        failed: examples whose classification raised an error.
        usage: tokens spent on the whole evaluation.
        golds: the true label of each example, in order.
        predictions: what was predicted for each example (None: no answer).
        inputs: the text classified for each example (a conversation's last user message),
            when the evaluation was given its inputs; else empty.
        confidences: the probability of each predicted label, where the technique saw the
            model's distribution (None elsewhere, and for failures and plain labels).
        probabilities: each example's label -> probability mapping, where known (else None).
        techniques: how many answers each rung of the ladder gave (``logit_bias``,
            ``structured``, ``prompt``); see :attr:`technique`.
    """

    model_config = ConfigDict(frozen=True)

    model: str | None = None
    labels: tuple[str, ...]
    n: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelMetrics, ...]
    confusion: tuple[tuple[int, ...], ...]
    abstained: int = 0
    failed: int = 0
    usage: TokenUsage = TokenUsage()
    golds: tuple[str, ...] = ()
    predictions: tuple[str | None, ...] = ()
    inputs: tuple[str, ...] = ()
    confidences: tuple[float | None, ...] = ()
    probabilities: tuple[dict[str, float] | None, ...] = ()
    techniques: dict[str, int] = {}

    @property
    def technique(self) -> str | None:
        """The technique that gave every answer; ``"mixed"`` when several did, else None.

        ``prompt`` means the endpoint allowed neither ``logit_bias`` nor structured output,
        so the label list was added to the prompt: a tuned model then saw text it was not
        trained on.
        """
        if not self.techniques:
            return None
        return next(iter(self.techniques)) if len(self.techniques) == 1 else "mixed"

    @property
    def abstained_rate(self) -> float:
        """The share of examples the model abstained on."""
        return self.abstained / self.n if self.n else 0.0

    @property
    def failed_rate(self) -> float:
        """The share of examples whose classification failed."""
        return self.failed / self.n if self.n else 0.0

    def metrics(self, label: str) -> LabelMetrics:
        """The metrics of ``label``.

        Raises:
            KeyError: ``label`` is not one of :attr:`labels`.
        """
        for entry in self.per_label:
            if entry.label == label:
                return entry
        raise KeyError(label)

    @classmethod
    def from_predictions(
        cls,
        golds: Sequence[str],
        predictions: Sequence[Classification | ClassificationError | str | None],
        *,
        labels: Sequence[str] | None = None,
        model: str | None = None,
        inputs: Sequence[TextInput] | None = None,
    ) -> Evaluation:
        """Score ``predictions`` against the true labels ``golds``.

        Args:
            golds: the true label of each example.
            predictions: per example, a :class:`Classification`, a
                :class:`ClassificationError` (a failure), a label, or None (an abstention).
            labels: the label set, in the order wanted; default: the labels of ``golds`` in
                order of first appearance, then any other predicted label.
            model: the model's name, for display.
            inputs: what was classified, per example: a text, or a conversation (kept as the
                text of its last user message); shown by :meth:`to_pandas`.

        Raises:
            ValueError: lengths differ, there is nothing to score, or a true label is not in
                ``labels``.
        """
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} true labels but {len(predictions)} predictions")
        if inputs is not None and len(inputs) != len(golds):
            raise ValueError(f"{len(golds)} true labels but {len(inputs)} inputs")
        if not golds:
            raise ValueError("nothing to evaluate: no examples")
        predicted: list[str | None] = []
        confidences: list[float | None] = []
        distributions: list[dict[str, float] | None] = []
        usage = TokenUsage()
        techniques: Counter[str] = Counter()
        abstained = failed = 0
        for item in predictions:
            known = item if isinstance(item, Classification) else None
            confidences.append(known.confidence if known else None)
            distributions.append(
                dict(known.probabilities) if known and known.probabilities is not None else None
            )
            if isinstance(item, ClassificationError):
                failed += 1
                predicted.append(None)
            elif isinstance(item, Classification):
                usage += item.usage
                techniques[item.technique] += 1
                abstained += item.label is None
                predicted.append(item.label)
            else:
                abstained += item is None
                predicted.append(item)
        names = _label_order(golds, predicted, labels)
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({g for g in golds if g not in index})
        if unknown:
            raise ValueError(f"true labels {unknown!r} are not among the labels {names!r}")
        size = len(names)
        matrix = [[0] * (size + 1) for _ in range(size)]
        for gold, guess in zip(golds, predicted, strict=True):
            column = index[guess] if guess is not None else size
            matrix[index[gold]][column] += 1
        per_label = tuple(_label_metrics(names, matrix, i) for i in range(size))
        used = [m for m in per_label if m.support or any(row[index[m.label]] for row in matrix)]
        correct = sum(matrix[i][i] for i in range(size))
        return cls(
            model=model,
            labels=tuple(names),
            n=len(golds),
            accuracy=correct / len(golds),
            macro_f1=sum(m.f1 for m in used) / len(used) if used else 0.0,
            per_label=per_label,
            confusion=tuple(tuple(row) for row in matrix),
            abstained=abstained,
            failed=failed,
            usage=usage,
            golds=tuple(golds),
            predictions=tuple(predicted),
            inputs=tuple(input_text(i) for i in inputs) if inputs is not None else (),
            confidences=tuple(confidences),
            probabilities=tuple(distributions),
            techniques=dict(techniques.most_common()),
        )

    def __str__(self) -> str:
        head = f"Evaluation of {self.model or 'a model'} on {self.n} examples"
        summary = (
            f"accuracy {self.accuracy:.3f}   macro-F1 {self.macro_f1:.3f}   "
            f"abstained {self.abstained_rate:.1%}   failed {self.failed_rate:.1%}   "
            f"tokens {self.usage.total_tokens:,}"
        )
        if self.technique is not None:
            summary += f"   technique {self.technique}"
        metrics = _table(
            ["label", "precision", "recall", "f1", "support"],
            [
                [m.label, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", str(m.support)]
                for m in self.per_label
            ],
        )
        confusion = _table(
            ["true \\ predicted", *self.labels, _NO_ANSWER],
            [
                [label, *(str(c) for c in row)]
                for label, row in zip(self.labels, self.confusion, strict=True)
            ],
        )
        return f"{head}\n{summary}\n\n{metrics}\n\n{confusion}"

    def _repr_html_(self) -> str:
        from .display import _html_results

        return _html_results.evaluation(self)

    def plot(self, ax: Any = None) -> Any:
        """The confusion matrix as an image with the counts. Needs matplotlib
        (``pip install "finetune-kit[plot]"``); returns the Axes drawn on."""
        from .display import _plot

        return _plot.evaluation(self, ax)

    def to_pandas(self) -> Any:
        """A DataFrame with one row per example: input, gold, predicted, correct, confidence,
        probabilities (None where not known: no inputs given, or no distribution seen)."""
        from .display import _frames

        return _frames.evaluation_frame(self)


def input_text(item: TextInput) -> str:
    """The text of what was classified: the string itself, or a conversation's last user
    message (its text parts joined), which is what a classifier's answer is about."""
    if isinstance(item, str):
        return item
    for message in reversed(item):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, Mapping) and part.get("type") == "text"
                )
    return ""


def _label_order(
    golds: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str] | None
) -> list[str]:
    names = list(dict.fromkeys(labels if labels is not None else golds))
    # A predicted label outside the set (possible only for plain strings) gets a column too.
    names.extend(p for p in dict.fromkeys(predicted) if p is not None and p not in names)
    return names


def _label_metrics(names: Sequence[str], matrix: Sequence[Sequence[int]], i: int) -> LabelMetrics:
    true_positive = matrix[i][i]
    support = sum(matrix[i])
    predicted = sum(row[i] for row in matrix)
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelMetrics(label=names[i], precision=precision, recall=recall, f1=f1, support=support)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def compare(*evaluations: Evaluation) -> Comparison:
    """A side-by-side table of evaluations (e.g. base model, checkpoints, tuned model).

    The result is that table as a ``str`` (a :class:`Comparison`), which also shows as HTML in
    notebooks and has ``plot()`` and ``to_pandas()``.

    Rows: examples, accuracy, macro-F1, abstained and failed rates, tokens, then F1 per label;
    one column per evaluation, headed by its model. Compare evaluations of the same held-out
    split: a note says so when the example counts differ.

    Raises:
        ValueError: no evaluation given.
    """
    if not evaluations:
        raise ValueError("compare() needs at least one Evaluation")
    labels = list(dict.fromkeys(label for e in evaluations for label in e.labels))
    header = ["", *(e.model or f"model {i + 1}" for i, e in enumerate(evaluations))]
    rows = [
        ["examples", *(str(e.n) for e in evaluations)],
        ["accuracy", *(f"{e.accuracy:.3f}" for e in evaluations)],
        ["macro-F1", *(f"{e.macro_f1:.3f}" for e in evaluations)],
        ["abstained", *(f"{e.abstained_rate:.1%}" for e in evaluations)],
        ["failed", *(f"{e.failed_rate:.1%}" for e in evaluations)],
        ["tokens", *(f"{e.usage.total_tokens:,}" for e in evaluations)],
    ]
    for label in labels:
        rows.append([f"F1 {label}", *(_f1_cell(e, label) for e in evaluations)])
    table = _table(header, rows)
    if len({e.n for e in evaluations}) > 1:
        table += "\nnote: the evaluations cover different numbers of examples"
    return Comparison(table, evaluations)


def _f1_cell(evaluation: Evaluation, label: str) -> str:
    try:
        return f"{evaluation.metrics(label).f1:.3f}"
    except KeyError:
        return "-"


# --- Held-out data ---------------------------------------------------------------------------


def evaluation_items(
    data: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    text_prompt: Callable[[str], list[dict[str, Any]]] | None = None,
) -> list[tuple[list[Message], str]]:
    """(conversation to classify, true label) pairs from labelled examples.

    Accepts a JSONL path, a :class:`~finetune_kit.Dataset` or any iterable of dicts. A chat
    example's true label is its final assistant message; the conversation before it is what
    gets classified, exactly as it is. Records of the form ``{"text": ..., "label": ...}``
    work too: the text becomes ``text_prompt(text)`` (default: one user message).

    Raises:
        ValueError: an example has no final assistant answer (or text/label) to score.
    """
    if isinstance(data, (str, os.PathLike)):
        from .datasets._dataset import Dataset

        data = Dataset.from_jsonl(data)
    items: list[tuple[list[Message], str]] = []
    for number, record in enumerate(data, start=1):
        items.append(_item(record, number, text_prompt))
    return items


def _item(
    record: Mapping[str, Any],
    number: int,
    text_prompt: Callable[[str], list[dict[str, Any]]] | None,
) -> tuple[list[Message], str]:
    text, label = record.get("text"), record.get("label")
    if isinstance(text, str) and isinstance(label, str):
        if text_prompt is not None:
            return list(text_prompt(text)), label
        return [{"role": "user", "content": text}], label
    messages = record.get("messages")
    if isinstance(messages, list) and len(messages) >= 2:
        last = messages[-1]
        if isinstance(last, Mapping) and last.get("role") == "assistant":
            content = last.get("content")
            if isinstance(content, str) and content.strip():
                return [dict(m) for m in messages[:-1]], content.strip()
    raise ValueError(
        f"example {number} has no label to score: it needs messages ending with an assistant "
        "answer, or 'text' and 'label'"
    )


# --- the result of compare() -------------------------------------------------------------


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
        from .display._html_results import comparison

        return comparison(self)

    def plot(self, ax: Any = None) -> Any:
        """Bars per metric, one colour per model; returns the matplotlib Axes drawn on."""
        from .display._plot import comparison

        return comparison(self, ax)

    def to_pandas(self) -> Any:
        """A DataFrame with a row per metric and a column per model."""
        from .display._frames import comparison_frame

        return comparison_frame(self)


def _f1(evaluation: Evaluation, label: str) -> float | None:
    try:
        return evaluation.metrics(label).f1
    except KeyError:
        return None
