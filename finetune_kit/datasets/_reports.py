"""Public result models for datasets: problems, validation reports, statistics, cost estimates.

They are pydantic models so that they print, compare, and serialise to JSON
(``model_dump(mode="json")``) the same way everywhere: the CLI's ``--json`` output is exactly
these dumps.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._exceptions import DatasetValidationError
from ..facts._formats import DataKind

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CostEstimate",
    "DatasetKind",
    "DatasetStats",
    "Distribution",
    "Histogram",
    "Problem",
    "Severity",
    "ValidationReport",
]

Severity = Literal["error", "warning"]
DatasetKind = DataKind
"""``chat``, ``preference``, ``reinforcement`` or ``completion`` (see ``facts._formats``)."""


class Problem(BaseModel):
    """One thing wrong (``error``) or worth a look (``warning``) in a dataset.

    Attributes:
        line: 1-based line of a file-backed dataset, or the record's 1-based position for
            in-memory data; None for problems of the dataset as a whole.
        code: stable snake_case identifier (see docs/datasets.md for the list).
        severity: ``"error"`` makes the service reject the data; ``"warning"`` does not.
        message: what is wrong and what to do about it, naming the field concerned.
    """

    model_config = ConfigDict(frozen=True)

    line: int | None
    code: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "dataset"
        return f"{where}: {self.code}: {self.message}"


class ValidationReport(BaseModel):
    """What :meth:`Dataset.validate` found.

    Only the first ``max_per_code`` problems of each code are kept in ``problems`` (a file with
    a million identical warnings would otherwise need a million objects); ``counts`` always
    holds the full number per code.

    Attributes:
        source: the file validated, or None for in-memory data.
        kind: the dataset's format, detected or forced.
        model: the model the data was checked against, if any.
        n_examples: non-blank lines (or records) seen.
        problems: the problems kept, dataset-level first, then in line order.
        counts: total number of problems per code, including those not kept.
        max_per_code: how many problems of one code are kept.
    """

    model_config = ConfigDict(frozen=True)

    source: str | None = None
    kind: DatasetKind
    model: str | None = None
    n_examples: int
    problems: list[Problem] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    max_per_code: int = 100

    @property
    def errors(self) -> list[Problem]:
        """The kept problems with severity ``error``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The kept problems with severity ``warning``."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def n_errors(self) -> int:
        """Total number of errors, including those beyond ``max_per_code``."""
        return sum(self.counts.get(code, 0) for code in {p.code for p in self.errors})

    @property
    def n_warnings(self) -> int:
        """Total number of warnings, including those beyond ``max_per_code``."""
        return sum(self.counts.get(code, 0) for code in {p.code for p in self.warnings})

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not any(p.severity == "error" for p in self.problems)

    def raise_for_errors(self) -> None:
        """Raise :class:`DatasetValidationError` when the report holds any error.

        Raises:
            DatasetValidationError: with ``problems`` listing errors first, then warnings.
        """
        if not self.ok:
            raise DatasetValidationError(self.errors + self.warnings, source=self.source)

    def __str__(self) -> str:
        head = f"{self.n_errors} error(s), {self.n_warnings} warning(s) in {self.n_examples} "
        head += f"{self.kind} examples" + (f" ({self.source})" if self.source else "")
        return "\n".join([head, *(f"  {p}" for p in self.problems)])

    def _repr_html_(self) -> str:
        from ..display import _html

        return _html.validation_report(self)


class Distribution(BaseModel):
    """Summary of a per-example quantity (tokens, messages, ...).

    Percentiles interpolate linearly between order statistics (numpy's default method).
    All fields are 0 for an empty dataset.
    """

    model_config = ConfigDict(frozen=True)

    count: int
    min: float
    mean: float
    p10: float
    p50: float
    p90: float
    max: float

    def cells(self) -> str:
        """min, p10, p50, mean, p90, max right-aligned in columns of 9 (for tables)."""
        values = (self.min, self.p10, self.p50, self.mean, self.p90, self.max)
        return "".join(f"{v:>9,.0f}" if float(v).is_integer() else f"{v:>9,.1f}" for v in values)

    @classmethod
    def from_counts(cls, counts: Mapping[int, int]) -> Distribution:
        """Summarise a histogram ``{value: how many examples have it}``.

        A histogram keeps memory flat however many examples there are: the number of distinct
        values is bounded by the largest value, not by the number of examples.
        """
        items = sorted((value, n) for value, n in counts.items() if n > 0)
        total = sum(n for _, n in items)
        if total == 0:
            return cls(count=0, min=0, mean=0, p10=0, p50=0, p90=0, max=0)

        def order_stat(k: int) -> int:
            seen = 0
            for value, n in items:
                seen += n
                if k < seen:
                    return value
            return items[-1][0]

        def percentile(q: float) -> float:
            pos = q * (total - 1)
            lo = int(pos)
            frac = pos - lo
            low = order_stat(lo)
            return float(low) if frac == 0 else low + (order_stat(lo + 1) - low) * frac

        return cls(
            count=total,
            min=items[0][0],
            mean=sum(value * n for value, n in items) / total,
            p10=percentile(0.10),
            p50=percentile(0.50),
            p90=percentile(0.90),
            max=items[-1][0],
        )


class Histogram(BaseModel):
    """How many examples fall in each range of a per-example quantity (tokens, ...).

    Bin ``i`` holds the values ``edges[i] <= value < edges[i + 1]``; the bins have one round
    width (1, 2 or 5 times a power of ten) and cover the smallest to the largest value. Empty
    for an empty dataset.

    Attributes:
        edges: the bins' bounds, one more than there are bins.
        counts: examples per bin.
    """

    model_config = ConfigDict(frozen=True)

    edges: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()

    @classmethod
    def from_counts(cls, counts: Mapping[int, int], *, bins: int = 30) -> Histogram:
        """Bin a histogram of exact values ``{value: how many examples have it}``.

        Memory is that of the bins and of ``counts`` (distinct values, at most the largest
        value): nothing grows with the number of examples.
        """
        present = [value for value, n in counts.items() if n > 0]
        if not present:
            return cls()
        low, high = min(present), max(present)
        width = _round_width((high - low + 1) / bins)
        start = low // width * width
        size = (high - start) // width + 1
        binned = [0] * size
        for value, n in counts.items():
            if n > 0:
                binned[(value - start) // width] += n
        return cls(edges=tuple(start + i * width for i in range(size + 1)), counts=tuple(binned))


def _round_width(least: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``least``."""
    power = 1
    while True:
        for step in (1, 2, 5):
            if step * power >= least:
                return step * power
        power *= 10


class DatasetStats(BaseModel):
    """Token and message statistics of a dataset, in one model's encoding.

    Attributes:
        model: the model counted for (None: o200k_base and the default context).
        encoding: the tiktoken encoding used.
        kind: the dataset's format.
        n_examples: examples counted (lines that are JSON objects).
        total_tokens: all tokens, by the counting rule in docs/datasets.md.
        assistant_tokens: tokens the model is trained on (assistant messages with weight 1).
        billable_tokens: tokens per epoch, each example capped at ``training_context``.
        training_context: the most tokens one example may have for this model.
        n_over_limit: examples longer than ``training_context``.
        tokens_per_example: distribution of total tokens per example.
        assistant_tokens_per_example: distribution of trained tokens per example.
        messages_per_example: distribution of messages per example.
        label_counts: examples per label for classification data, else None.
        token_histogram: examples per range of total tokens (what :meth:`plot` draws).
    """

    model_config = ConfigDict(frozen=True)

    model: str | None
    encoding: str
    kind: DatasetKind
    n_examples: int
    total_tokens: int
    assistant_tokens: int
    billable_tokens: int
    training_context: int
    n_over_limit: int
    tokens_per_example: Distribution
    assistant_tokens_per_example: Distribution
    messages_per_example: Distribution
    label_counts: dict[str, int] | None = None
    token_histogram: Histogram = Histogram()

    def __str__(self) -> str:
        rows = [
            f"Tokens ({self.encoding}, training context {self.training_context:,} per example)",
            f"  total {self.total_tokens:,} · trained (assistant) {self.assistant_tokens:,} · "
            f"billable per epoch {self.billable_tokens:,} · over the limit {self.n_over_limit:,}",
            f"  {'per example':<18}"
            + "".join(f"{h:>9}" for h in ("min", "p10", "p50", "mean", "p90", "max")),
        ]
        for label, dist in (
            ("tokens", self.tokens_per_example),
            ("trained tokens", self.assistant_tokens_per_example),
            ("messages", self.messages_per_example),
        ):
            rows.append(f"  {label:<18}" + dist.cells())
        if self.label_counts:
            labels = " · ".join(f"{k} {v:,}" for k, v in self.label_counts.items())
            rows.append(f"Labels ({len(self.label_counts)}): {labels}")
        return "\n".join(rows)

    def _repr_html_(self) -> str:
        from ..display import _html

        return _html.dataset_stats(self)

    def plot(self, ax: Any = None) -> Any:
        """A histogram of tokens per example, with the model's training context marked.

        Needs matplotlib (``pip install "finetune-kit[plot]"``); draws on ``ax`` when given
        and returns the Axes drawn on.
        """
        from ..display import _plot

        return _plot.dataset_stats(self, ax)


class CostEstimate(BaseModel):
    """An upper bound on what training on a dataset costs.

    Attributes:
        model: the model asked about.
        base_model: the base model whose price applies.
        n_examples: examples in the dataset.
        n_epochs: epochs assumed (given, or the service's default rule).
        n_epochs_source: ``"given"`` or ``"default"`` (the service's rule, see docs).
        billable_tokens: tokens per epoch, each example capped at the training context.
        trained_tokens: ``billable_tokens * n_epochs``.
        price_per_mtok: USD per 1M training tokens used; None when unknown.
        usd: the estimate in US dollars; None when no price is known.
        price_date: when the price table was last checked.
        price_source: ``"catalog"``, ``"override"`` (``prices=``) or ``"unknown"``.
        note: why there is no estimate, or what it leaves out.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    base_model: str
    n_examples: int
    n_epochs: int
    n_epochs_source: Literal["given", "default"]
    billable_tokens: int
    trained_tokens: int
    price_per_mtok: float | None
    usd: float | None
    price_date: dt.date
    price_source: Literal["catalog", "override", "unknown"]
    note: str | None = None

    def __str__(self) -> str:
        tokens = (
            f"{self.n_epochs} epoch(s) x {self.billable_tokens:,} tokens = "
            f"{self.trained_tokens:,} trained tokens"
        )
        if self.usd is None:
            return f"{self.model}: {tokens}; no price known ({self.note or 'pass prices='})"
        return (
            f"{self.model}: {tokens} x ${self.price_per_mtok}/1M = at most ${self.usd:,.2f} "
            f"(prices as of {self.price_date.isoformat()})"
        )

    def _repr_html_(self) -> str:
        from ..display import _html

        return _html.cost_estimate(self)
