"""HTML building blocks, and the HTML of the dataset reports and of a classification.

Every piece of text from the outside world (labels, messages, file names, model names) goes
through :func:`esc`; only :class:`Markup` that this package built itself is inserted as is.
Styles are inline: notebook front ends and GitHub's renderer drop ``<style>`` blocks but keep
``style=`` attributes, and the output stays self-contained.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ..classification._classify import Classification
    from ..datasets._reports import (
        CostEstimate,
        DatasetStats,
        Distribution,
        Histogram,
        ValidationReport,
    )

__all__ = [
    "Markup",
    "bar",
    "card",
    "classification",
    "cost_estimate",
    "dataset_stats",
    "esc",
    "histogram",
    "number",
    "table",
    "validation_report",
]

#: Problems listed per code in a validation report's HTML (the counts cover all of them).
MAX_LISTED: Final = 20
#: Line numbers shown per code in the summary table.
MAX_LINES: Final = 10

_FONT: Final = "font-family: system-ui, sans-serif; font-size: 13px"
_CELL: Final = "padding: 2px 8px; border-bottom: 1px solid #ddd"
_BAR_COLOR: Final = "#4c78a8"
_ERROR_COLOR: Final = "#c0392b"
_WARNING_COLOR: Final = "#b9770e"
_OK_COLOR: Final = "#1e8449"


class Markup(str):
    """HTML built here, inserted without escaping (anything else is escaped)."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """``value`` as text that cannot become markup (quotes included, for attributes)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def number(value: float | None, digits: int = 3) -> str:
    """A score or loss for a table cell (``digits`` decimals); an em dash when there is none."""
    if value is None:
        return "\u2014"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def count(value: float) -> str:
    """A count or token length: whole numbers without decimals, others with one."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def table(
    header: Sequence[object] | None,
    rows: Iterable[Sequence[object]],
    *,
    numeric_from: int = 1,
) -> Markup:
    """A table; columns from ``numeric_from`` on are right-aligned."""

    def cells(row: Sequence[object], tag: str) -> str:
        out = []
        for i, cell in enumerate(row):
            align = "right" if i >= numeric_from else "left"
            out.append(f'<{tag} style="{_CELL}; text-align: {align}">{esc(cell)}</{tag}>')
        return "<tr>" + "".join(out) + "</tr>"

    head = f"<thead>{cells(header, 'th')}</thead>" if header is not None else ""
    body = "".join(cells(row, "td") for row in rows)
    return Markup(
        f'<table style="border-collapse: collapse; margin: 4px 0">{head}<tbody>{body}</tbody>'
        "</table>"
    )


def bar(fraction: float, *, width: int = 120, color: str = _BAR_COLOR) -> Markup:
    """A horizontal bar filled to ``fraction`` (clamped to 0..1)."""
    filled = max(0.0, min(1.0, fraction)) * 100
    return Markup(
        f'<div style="display: inline-block; width: {width}px; height: 10px; '
        f'background: #eee; vertical-align: middle">'
        f'<div style="width: {filled:.1f}%; height: 100%; background: {color}"></div></div>'
    )


def badge(text: str, color: str) -> Markup:
    """A small coloured label (``text`` is escaped)."""
    return Markup(
        f'<span style="color: white; background: {color}; padding: 0 6px; '
        f'border-radius: 3px">{esc(text)}</span>'
    )


def card(title: object, *parts: object) -> Markup:
    """A titled block: the outer element of every repr."""
    body = "".join(f"<div>{esc(part)}</div>" for part in parts)
    return Markup(
        f'<div class="finetune-kit" style="{_FONT}"><div style="font-weight: 600; '
        f'margin-bottom: 4px">{esc(title)}</div>{body}</div>'
    )


def heading(text: object) -> Markup:
    """A small section heading inside a card."""
    return Markup(f'<div style="font-weight: 600; margin-top: 8px">{esc(text)}</div>')


# --- datasets -------------------------------------------------------------------------------


def validation_report(report: ValidationReport) -> Markup:
    """Problems grouped by code: severity, total count, first lines, and the messages."""
    status = badge("ok", _OK_COLOR) if report.ok else badge("errors", _ERROR_COLOR)
    where = f" ({report.source})" if report.source else ""
    head = Markup(
        f"{status} {esc(report.n_errors)} error(s), {esc(report.n_warnings)} warning(s) in "
        f"{esc(report.n_examples)} {esc(report.kind)} examples{esc(where)}"
    )
    by_code: dict[str, list[tuple[int | None, str, str]]] = {}
    for p in report.problems:
        by_code.setdefault(p.code, []).append((p.line, p.severity, p.message))
    if not by_code:
        return card("Validation report", head, "No problems found.")
    rows = []
    for code, found in by_code.items():
        lines = [str(line) for line, _, _ in found if line is not None]
        shown = ", ".join(lines[:MAX_LINES]) + (", \u2026" if len(lines) > MAX_LINES else "")
        severity = found[0][1]
        color = _ERROR_COLOR if severity == "error" else _WARNING_COLOR
        rows.append(
            [
                code,
                badge(severity, color),
                report.counts.get(code, len(found)),
                shown or "dataset",
            ]
        )
    summary = table(["code", "severity", "count", "lines"], rows, numeric_from=2)
    details = [
        _problem_details(code, found, report.counts.get(code, len(found)))
        for code, found in by_code.items()
    ]
    return card("Validation report", head, summary, *details)


def _problem_details(code: str, found: Sequence[tuple[int | None, str, str]], total: int) -> Markup:
    listed = "".join(
        f"<li>{esc('dataset' if line is None else f'line {line}')}: {esc(message)}</li>"
        for line, _, message in found[:MAX_LISTED]
    )
    more = total - min(len(found), MAX_LISTED)
    tail = f"<li>\u2026 and {more:,} more</li>" if more > 0 else ""
    return Markup(
        f'<details><summary>{esc(code)} ({total:,})</summary><ul style="margin: 2px 0">'
        f"{listed}{tail}</ul></details>"
    )


_QUANTILES: Final = (
    ("min", "min"),
    ("p10", "p10"),
    ("p50", "p50"),
    ("mean", "mean"),
    ("p90", "p90"),
    ("max", "max"),
)


def quantiles(dist: Distribution) -> list[tuple[str, float]]:
    """(name, value) of a distribution's summary, smallest to largest."""
    return [(name, float(getattr(dist, attr))) for name, attr in _QUANTILES]


def dataset_stats(stats: DatasetStats) -> Markup:
    """Totals, the per-example table, token lengths against the context, label counts."""
    totals = table(
        None,
        [
            ["examples", f"{stats.n_examples:,}"],
            ["total tokens", f"{stats.total_tokens:,}"],
            ["trained (assistant) tokens", f"{stats.assistant_tokens:,}"],
            ["billable tokens per epoch", f"{stats.billable_tokens:,}"],
            ["examples over the limit", f"{stats.n_over_limit:,}"],
        ],
    )
    per_example = table(
        ["per example", *(name for name, _ in _QUANTILES)],
        [
            [label, *(count(value) for _, value in quantiles(dist))]
            for label, dist in (
                ("tokens", stats.tokens_per_example),
                ("trained tokens", stats.assistant_tokens_per_example),
                ("messages", stats.messages_per_example),
            )
        ],
    )
    parts: list[object] = [
        f"{stats.kind} data, {stats.encoding}, training context "
        f"{stats.training_context:,} tokens per example",
        totals,
        heading("Per example"),
        per_example,
        heading("Tokens per example, and the training context"),
        histogram(stats.token_histogram, stats.training_context),
    ]
    if stats.label_counts:
        parts += [heading("Labels"), _label_bars(stats.label_counts)]
    return card(f"Dataset statistics ({stats.model or 'default model'})", *parts)


#: Height in pixels of the tallest bar of a histogram.
_HIST_HEIGHT: Final = 60


def histogram(hist: Histogram, limit: int) -> Markup:
    """Vertical bars, one per bin (hover for its range and count), and where ``limit`` is.

    Bins at or past ``limit`` are drawn in the error colour: those examples are too long.
    """
    if not hist.counts:
        return Markup("<div>no examples</div>")
    most = max(hist.counts) or 1
    bars = []
    for low, high, n in zip(hist.edges, hist.edges[1:], hist.counts, strict=False):
        height = max(1, round(n / most * _HIST_HEIGHT)) if n else 0
        color = _ERROR_COLOR if high > limit else _BAR_COLOR
        tip = f"{low:,}\u2013{high - 1:,} tokens: {n:,} examples"
        bars.append(
            f'<div title="{esc(tip)}" style="display: inline-block; width: 8px; '
            f"height: {height}px; margin-right: 1px; background: {color}; "
            f'vertical-align: bottom"></div>'
        )
    where = (
        f"training context {limit:,} tokens: beyond every example"
        if limit >= hist.edges[-1]
        else f"training context {limit:,} tokens: red bins reach past it"
    )
    return Markup(
        '<div class="finetune-kit-histogram" style="display: inline-block; '
        f"height: {_HIST_HEIGHT}px; "
        f'border-bottom: 1px solid #999; white-space: nowrap">{"".join(bars)}</div>'
        f'<div style="color: #666">{esc(f"{hist.edges[0]:,}")} to '
        f"{esc(f'{hist.edges[-1]:,}')} tokens per example \u00b7 {esc(where)}</div>"
    )


def _label_bars(counts: Mapping[str, int]) -> Markup:
    most = max(counts.values(), default=0) or 1
    return table(
        None, [[label, bar(n / most), f"{n:,}"] for label, n in counts.items()], numeric_from=2
    )


def cost_estimate(cost: CostEstimate) -> Markup:
    """The bound in dollars (or why there is none) and how it was reached."""
    if cost.usd is None:
        headline = f"no price known ({cost.note or 'pass prices='})"
    else:
        headline = f"at most ${cost.usd:,.2f} (prices as of {cost.price_date.isoformat()})"
    price = "\u2014" if cost.price_per_mtok is None else f"${cost.price_per_mtok:g} per 1M tokens"
    rows = [
        ["model", cost.model],
        ["priced as", cost.base_model],
        ["examples", f"{cost.n_examples:,}"],
        ["epochs", f"{cost.n_epochs} ({cost.n_epochs_source})"],
        ["billable tokens per epoch", f"{cost.billable_tokens:,}"],
        ["trained tokens", f"{cost.trained_tokens:,}"],
        ["price", f"{price} ({cost.price_source})"],
    ]
    parts: list[object] = [headline, table(None, rows)]
    if cost.note and cost.usd is not None:
        parts.append(cost.note)
    return card("Cost estimate", *parts)


# --- classification -------------------------------------------------------------------------


def classification(result: Classification) -> Markup:
    """The label (or the abstention), its confidence, and a bar per label's probability."""
    label = "abstained" if result.label is None else result.label
    confidence = "" if result.confidence is None else f" ({result.confidence:.1%})"
    parts: list[object] = [
        Markup(
            f"<b>{esc(label)}</b>{esc(confidence)} \u00b7 {esc(result.technique)} \u00b7 "
            f"{esc(result.model)}"
        )
    ]
    if result.probabilities:
        ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])
        parts.append(
            table(None, [[name, bar(p), f"{p:.1%}"] for name, p in ranked], numeric_from=2)
        )
        if result.probability_outside is not None:
            parts.append(f"probability outside the labels: {result.probability_outside:.1%}")
    return card("Classification", *parts)
