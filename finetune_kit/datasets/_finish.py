"""The dataset as a whole: dataset-level problems, and the public report and statistics.

:func:`finish` takes the merged :class:`~._checker.Tally` of every example and adds what only
the whole dataset shows (too few examples, a file too large for an API, a format the model
does not train on, missing system/user messages, label collisions, duplicates), then builds
the :class:`ValidationReport` and :class:`DatasetStats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..facts._formats import format_mismatch
from ..facts._limits import MAX_FILE_BYTES, MAX_UPLOAD_BYTES
from ._checker import Tally, token_counter
from ._codes import MIN_EXAMPLES
from ._examples import looks_like_classification
from ._reports import DatasetStats, Distribution, Histogram, ValidationReport

if TYPE_CHECKING:
    from array import array
    from collections.abc import Iterator

    from ..facts._models import ModelFacts
    from ..facts._tokens import TokenCounter
    from ._checker import CheckConfig
    from ._reports import DatasetKind

__all__ = ["DatasetFacts", "duplicates", "finish"]


def duplicates(hashes: array[int]) -> Iterator[tuple[int, int]]:
    """``(line, first line)`` of every example identical to an earlier one.

    Memory stays small for millions of lines: a first pass counts hashes into a bytearray of
    saturating buckets (16 buckets per line, so few distinct hashes share one); only lines in
    buckets hit twice are then looked up in a dict.
    """
    bits = max(10, min(28, (len(hashes) * 16).bit_length()))
    shift = 64 - bits
    buckets = bytearray(1 << bits)
    for h in hashes:
        if h:
            i = h >> shift
            if buckets[i] < 2:
                buckets[i] += 1
    seen: dict[int, int] = {}
    for index, h in enumerate(hashes):
        if h and buckets[h >> shift] == 2:
            first = seen.setdefault(h, index + 1)
            if first != index + 1:
                yield index + 1, first


@dataclass(frozen=True)
class DatasetFacts:
    """What :func:`finish` needs to know about the dataset besides the tally."""

    source: str | None
    kind: DatasetKind
    model: str | None
    facts: ModelFacts | None
    size_bytes: int | None


def finish(
    tally: Tally, config: CheckConfig, dataset: DatasetFacts
) -> tuple[ValidationReport, DatasetStats]:
    """Add the dataset-level problems to a merged tally and build the report and stats."""
    keep = config.max_per_code
    head = Tally()  # dataset-level problems, listed first
    if tally.n_examples < MIN_EXAMPLES:
        head.add(
            None,
            "too_few_examples",
            f"the dataset has {tally.n_examples} example(s); the service needs at least "
            f"{MIN_EXAMPLES}",
            keep,
        )
    size = dataset.size_bytes
    if size is not None and size > MAX_UPLOAD_BYTES:
        head.add(None, "file_too_large", f"the file has {size:,} bytes; the limit is 8 GB", keep)
    elif size is not None and size > MAX_FILE_BYTES:
        head.add(
            None,
            "large_file",
            f"the file has {size:,} bytes, over the Files API's 512 MB: it must go through the "
            "Uploads API (in 64 MB parts)",
            keep,
        )
    facts = dataset.facts
    if facts is not None and facts.known:
        problem = format_mismatch(dataset.kind, facts)
        if problem:
            head.add(None, "model_format_mismatch", problem, keep)
    for code, lines in tally.aggregated_lines.items():
        n = tally.aggregated[code]
        role = "system" if code == "missing_system" else "user"
        shown = ", ".join(map(str, lines)) + (", ..." if n > len(lines) else "")
        head.add(
            None,
            code,
            f"{n:,} of {tally.n_examples:,} examples have no {role} message (lines {shown})",
            keep,
        )
    labels = (
        tally.labels
        if dataset.kind == "chat" and looks_like_classification(tally.labels, tally.n_examples)
        else None
    )
    if labels is not None and dataset.model is not None:
        for message in _label_collisions(sorted(labels), token_counter(config.encoding)):
            head.add(None, "label_first_token_collision", message, keep)
    for line, first in duplicates(tally.hashes):
        tally.add(line, "duplicate_example", f"the example is identical to line {first}", keep)
    head.merge(tally, keep)
    problems = sorted(head.problems, key=lambda p: (p.line is not None, p.line or 0))
    report = ValidationReport(
        source=dataset.source,
        kind=dataset.kind,
        model=dataset.model,
        n_examples=tally.n_examples,
        problems=problems,
        counts=dict(sorted(head.counts.items())),
        max_per_code=keep,
    )
    stats = DatasetStats(
        model=dataset.model,
        encoding=config.encoding,
        kind=dataset.kind,
        n_examples=sum(tally.tokens.values()),
        total_tokens=tally.total_tokens,
        assistant_tokens=tally.assistant_tokens,
        billable_tokens=tally.billable_tokens,
        training_context=config.training_context,
        n_over_limit=tally.n_over_limit,
        tokens_per_example=Distribution.from_counts(tally.tokens),
        assistant_tokens_per_example=Distribution.from_counts(tally.trained),
        messages_per_example=Distribution.from_counts(tally.messages),
        label_counts=dict(sorted(labels.items())) if labels is not None else None,
        token_histogram=Histogram.from_counts(tally.tokens),
    )
    return report, stats


def _label_collisions(labels: list[str], counter: TokenCounter) -> Iterator[str]:
    """One message per group of labels whose first token (in the model's encoding) is shared."""
    groups: dict[int, list[str]] = {}
    for label in labels:
        tokens = counter.encoding.encode_ordinary(label)
        if tokens:
            groups.setdefault(tokens[0], []).append(label)
    for token, group in groups.items():
        if len(group) > 1:
            first = counter.encoding.decode([token])
            yield (
                f"labels {', '.join(map(repr, group))} all start with the token {first!r}: a "
                "classifier reading the first token cannot tell them apart (rename them, or "
                "classify() will use aliases)"
            )
