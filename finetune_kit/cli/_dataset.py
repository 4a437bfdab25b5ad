"""`finetune-kit` commands for the dataset area (see ``_main.py`` for the conventions).

``finetune-kit validate FILE [--model M] [--json]`` prints the problems, the statistics and the
cost estimate of a JSONL training file. Exit codes: 0 valid, 1 errors found, 2 usage error or
unreadable file. ``--json`` prints one object whose shape is versioned (``schema_version``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import TYPE_CHECKING

from .._exceptions import DatasetError, TokenizerError
from ..datasets._dataset import Dataset
from ._common import caught_warnings, fail, show_warnings

if TYPE_CHECKING:
    import argparse

    from ..datasets._reports import CostEstimate, DatasetStats, Problem, ValidationReport

__all__ = ["JSON_SCHEMA_VERSION", "render_text", "run_validate"]

#: Bumped only when a field of the ``--json`` output changes meaning or disappears.
JSON_SCHEMA_VERSION = 1
_SHOWN_PER_CODE = 5


def run_validate(args: argparse.Namespace) -> int:
    """``finetune-kit validate``: problems, statistics and cost of a file."""
    with caught_warnings() as caught:
        try:
            ds = Dataset.from_jsonl(args.file, kind=args.kind)
            report = ds.validate(model=args.model)
            stats = ds.stats(model=args.model)
            cost = ds.estimate_cost(model=args.model) if args.model else None
        except (DatasetError, TokenizerError) as exc:
            return fail("validate", exc, 2)
    show_warnings(caught)
    if args.as_json:
        payload = {
            "schema_version": JSON_SCHEMA_VERSION,
            "file": args.file,
            "ok": report.ok,
            "n_errors": report.n_errors,
            "n_warnings": report.n_warnings,
            "report": report.model_dump(mode="json"),
            "stats": stats.model_dump(mode="json"),
            "cost": cost.model_dump(mode="json") if cost is not None else None,
        }
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(args.file, report, stats, cost))
    return 0 if report.ok else 1


def render_text(
    name: str, report: ValidationReport, stats: DatasetStats, cost: CostEstimate | None
) -> str:
    """The human-readable ``validate`` output: verdict, problems, tokens, cost."""
    model = f" · model {report.model}" if report.model else ""
    lines = [f"{name}: {report.n_examples:,} {report.kind} examples{model}"]
    verdict = "OK" if report.ok else "FAILED"
    lines.append(
        f"{verdict}: {_plural(report.n_errors, 'error')}, {_plural(report.n_warnings, 'warning')}"
    )
    for title, problems in (("Errors", report.errors), ("Warnings", report.warnings)):
        if problems:
            lines += ["", title, *_problem_rows(problems, report.counts)]
    lines += ["", str(stats), "", *_cost_rows(cost)]
    return "\n".join(lines) + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _problem_rows(problems: list[Problem], counts: dict[str, int]) -> list[str]:
    rows: list[str] = []
    shown: Counter[str] = Counter()
    width = max(len(p.code) for p in problems)
    for problem in problems:
        shown[problem.code] += 1
        if shown[problem.code] > _SHOWN_PER_CODE:
            continue
        where = f"line {problem.line}" if problem.line is not None else "dataset"
        rows.append(f"  {where:<11} {problem.code:<{width}}  {problem.message}")
    for code, n in shown.items():
        rest = counts.get(code, n) - min(n, _SHOWN_PER_CODE)
        if rest > 0:
            rows.append(f"  {'':<11} ... and {rest:,} more {code}")
    return rows


def _cost_rows(cost: CostEstimate | None) -> list[str]:
    if cost is None:
        return ["Cost: pass --model to estimate it (e.g. --model gpt-4.1-mini)"]
    epochs = f"{cost.n_epochs} epoch{'s' if cost.n_epochs != 1 else ''}"
    rule = " (the service's default)" if cost.n_epochs_source == "default" else ""
    head = f"Cost ({cost.model}, prices as of {cost.price_date.isoformat()})"
    tokens = (
        f"  {epochs}{rule} x {cost.billable_tokens:,} tokens = {cost.trained_tokens:,} "
        "trained tokens"
    )
    if cost.usd is None:
        return [head, tokens, f"  no estimate: {cost.note}"]
    return [head, tokens + f" x ${cost.price_per_mtok:,.2f} per 1M = at most ${cost.usd:,.2f}"]
