"""Checking examples into tallies: the unit of work of validation, serial or in parallel.

:class:`Checker` applies the rule families (``_examples.py``) to each example of a chunk of
lines or of in-memory records, attaches each issue's line and severity (``_codes.CODES``) and
counts tokens, all into a :class:`Tally`. A tally is plain picklable data, so large files are
checked in ranges by worker processes (``_parallel.py``) and the tallies merged in line order;
``_finish.py`` then adds the dataset-level problems.

Nothing here raises on bad input: the JSON parser's own failures (including ``RecursionError``
on absurd nesting) become ``invalid_json`` problems, and a bug in a rule becomes an
``internal_error`` problem on its line instead of hiding the other lines' problems.
"""

from __future__ import annotations

import json
import logging
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..facts._tokens import TokenCounter, get_encoding
from ._codes import CLASSIFICATION_MAX_LABELS, CODES, DECODER, KEEP_FIRST_LINES
from ._examples import (
    FAMILIES,
    check_format,
    check_special_tokens,
    check_surrogates,
    label_of,
)
from ._reports import DatasetKind, Problem
from ._source import strip_bom

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CheckConfig",
    "Checker",
    "Tally",
    "check_chunk",
    "check_range",
    "check_records",
    "token_counter",
    "warm_up",
]

logger = logging.getLogger("finetune_kit")


@dataclass(frozen=True)
class CheckConfig:
    """What a worker needs to check examples: plain data, cheap to send to a process."""

    kind: DatasetKind
    encoding: str
    training_context: int
    max_per_code: int = 100


@dataclass
class Tally:
    """Everything one chunk of examples contributes to the report and the statistics.

    Lines are numbered from 1 within the chunk; :meth:`merge` renumbers a later chunk's lines
    after this one's. ``hashes`` has one entry per line (0 where there is no example), so its
    length is the number of lines seen.
    """

    n_examples: int = 0
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    aggregated: Counter[str] = field(default_factory=Counter)
    aggregated_lines: dict[str, list[int]] = field(default_factory=dict)
    tokens: Counter[int] = field(default_factory=Counter)
    trained: Counter[int] = field(default_factory=Counter)
    messages: Counter[int] = field(default_factory=Counter)
    total_tokens: int = 0
    assistant_tokens: int = 0
    billable_tokens: int = 0
    n_over_limit: int = 0
    hashes: array[int] = field(default_factory=lambda: array("Q"))
    labels: Counter[str] | None = field(default_factory=Counter)

    def add(self, line: int | None, code: str, message: str, max_per_code: int) -> None:
        """Record a problem, keeping only the first ``max_per_code`` of each code."""
        self.counts[code] += 1
        if self.counts[code] <= max_per_code:
            self.problems.append(
                Problem(line=line, code=code, severity=CODES[code][0], message=message)
            )

    def merge(self, other: Tally, max_per_code: int) -> None:
        """Add the next chunk's tally to this one, renumbering its lines to follow ours."""
        offset = len(self.hashes)
        self.n_examples += other.n_examples
        kept = Counter(p.code for p in self.problems)
        for problem in other.problems:
            if kept[problem.code] < max_per_code:
                kept[problem.code] += 1
                if offset and problem.line is not None:
                    problem = problem.model_copy(update={"line": problem.line + offset})
                self.problems.append(problem)
        self.counts.update(other.counts)
        self.aggregated.update(other.aggregated)
        for code, lines in other.aggregated_lines.items():
            mine = self.aggregated_lines.setdefault(code, [])
            mine.extend(line + offset for line in lines[: KEEP_FIRST_LINES - len(mine)])
        self.tokens.update(other.tokens)
        self.trained.update(other.trained)
        self.messages.update(other.messages)
        self.total_tokens += other.total_tokens
        self.assistant_tokens += other.assistant_tokens
        self.billable_tokens += other.billable_tokens
        self.n_over_limit += other.n_over_limit
        self.hashes.extend(other.hashes)
        if self.labels is not None and other.labels is not None:
            self.labels.update(other.labels)
            if len(self.labels) > CLASSIFICATION_MAX_LABELS:
                self.labels = None
        else:
            self.labels = None


def _hash(data: bytes) -> int:
    # Python's own 64-bit SipHash: twenty times cheaper per line than hashlib, and consistent
    # within one validation: it runs in one process, or in workers that all get the same
    # PYTHONHASHSEED (_parallel.py), never in a mix of the two.
    # A collision among a billion examples has odds of about 3%, and only makes a duplicate
    # warning wrong, never an error. Never 0, which marks "no example".
    return (hash(data) & 0xFFFF_FFFF_FFFF_FFFF) or 1


class Checker:
    """Checks examples one by one into a :class:`Tally` (one per chunk)."""

    def __init__(self, config: CheckConfig, counter: TokenCounter) -> None:
        self.config = config
        self.counter = counter
        self.family = FAMILIES[config.kind]

    def line(self, tally: Tally, raw: bytes, line: int, *, first_of_file: bool) -> None:
        """Check one raw line of a JSONL file (without its ``\\n``)."""
        keep = self.config.max_per_code
        if first_of_file:
            raw, had_bom = strip_bom(raw)
            if had_bom:
                tally.add(
                    line,
                    "bom",
                    "the file starts with a byte order mark: save it as UTF-8 without BOM",
                    keep,
                )
        body = raw.strip()
        if not body:
            tally.hashes.append(0)
            tally.add(line, "blank_line", "the line is empty: remove it", keep)
            return
        tally.n_examples += 1
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            tally.hashes.append(0)
            tally.labels = None
            tally.add(
                line,
                "invalid_utf8",
                f"the line is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset "
                f"{exc.start}): save the file as UTF-8",
                keep,
            )
            return
        try:
            record = DECODER.decode(text)
        except (ValueError, RecursionError) as exc:
            tally.hashes.append(0)
            tally.labels = None
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            tally.add(line, "invalid_json", f"the line is not valid JSON: {reason}", keep)
            return
        tally.hashes.append(_hash(body))
        # Special-token text needs a '<' in the line, raw or escaped as \u003c: skip the walk
        # over every string when neither is there (nearly always).
        maybe_special = b"<" in body or b"\\u003" in body
        # A lone surrogate can only come from an escape (raw ones are invalid UTF-8 above).
        maybe_surrogate = b"\\ud" in body or b"\\uD" in body
        self.example(
            tally, record, line, maybe_special=maybe_special, maybe_surrogate=maybe_surrogate
        )

    def record(self, tally: Tally, record: object, line: int) -> None:
        """Check one in-memory record (its 1-based position is its ``line``)."""
        tally.n_examples += 1
        try:
            # surrogatepass: a lone surrogate is reported as lone_surrogate, with its place.
            data = json.dumps(
                record, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
            ).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError) as exc:
            tally.hashes.append(0)
            tally.add(
                line,
                "not_serializable",
                f"the record cannot be written as JSON ({type(exc).__name__}: {exc})",
                self.config.max_per_code,
            )
            return  # it cannot be uploaded; and it may be circular, so walk no further
        tally.hashes.append(_hash(data))
        self.example(tally, record, line, maybe_special=True, maybe_surrogate=True)

    def example(
        self,
        tally: Tally,
        record: object,
        line: int,
        *,
        maybe_special: bool,
        maybe_surrogate: bool,
    ) -> None:
        """Apply every rule family to a parsed example and count its tokens.

        ``maybe_special`` and ``maybe_surrogate`` say whether the walks over every string for
        special tokens and lone surrogates can find anything (cheap byte tests on the line).
        """
        keep = self.config.max_per_code
        try:
            issues = list(check_format(record, self.config.kind))
            if not issues and isinstance(record, dict):
                issues.extend(self.family(record))
                if maybe_special:
                    issues.extend(check_special_tokens(record))
                if maybe_surrogate:
                    issues.extend(check_surrogates(record))
                self._count(tally, record, line)
                self._aggregate(tally, record, line)
            else:
                tally.labels = None
        except Exception as exc:  # a bug must not hide the other lines' problems
            logger.exception("finetune_kit failed to check line %s", line)
            issues = [("internal_error", f"checking failed ({type(exc).__name__}: {exc})")]
        for code, message in issues:
            tally.add(line, code, message, keep)

    def _aggregate(self, tally: Tally, record: dict[str, object], line: int) -> None:
        if self.config.kind != "chat":
            return
        messages = record.get("messages")
        if not isinstance(messages, list):
            tally.labels = None
            return
        roles = [m.get("role") for m in messages if isinstance(m, dict)]
        for role, code in (("system", "missing_system"), ("user", "missing_user")):
            if role not in roles:
                tally.aggregated[code] += 1
                lines = tally.aggregated_lines.setdefault(code, [])
                if len(lines) < KEEP_FIRST_LINES:
                    lines.append(line)
        if tally.labels is not None:
            label = label_of(record)
            if label is None:
                tally.labels = None
            else:
                tally.labels[label] += 1
                if len(tally.labels) > CLASSIFICATION_MAX_LABELS:
                    tally.labels = None

    def _count(self, tally: Tally, record: dict[str, object], line: int) -> None:
        counter = self.counter
        limit = self.config.training_context
        kind = self.config.kind
        messages = record.get("messages")
        n_messages = len(messages) if isinstance(messages, list) else 0
        if kind == "preference":
            given = record.get("input")
            given = given if isinstance(given, dict) else {}
            prompt = given.get("messages")
            prompt = prompt if isinstance(prompt, list) else []
            tools = given.get("tools")
            sequences = []
            trained = 0
            for key in ("preferred_output", "non_preferred_output"):
                output = record.get(key)
                output = output if isinstance(output, list) else []
                sequence, _ = counter.messages(prompt + output, tools=tools)
                sequences.append(sequence)
                trained += sum(counter.message(m)[1] for m in output)
            total = sum(sequences)
            billable = sum(min(limit, n) for n in sequences)
            longest = max(sequences)
            n_messages = len(prompt) + 1
        elif kind == "completion":
            prompt_text, completion = record.get("prompt"), record.get("completion")
            trained = counter.count(completion) if isinstance(completion, str) else 0
            total = trained + (counter.count(prompt_text) if isinstance(prompt_text, str) else 0)
            billable, longest, n_messages = min(limit, total), total, 2
        else:
            tools = record.get("tools", record.get("functions"))
            total, trained = counter.messages(messages, tools=tools)
            if kind == "reinforcement":
                trained = 0  # the prompt is not trained on; the model's own replies are graded
            billable, longest = min(limit, total), total
        tally.tokens[total] += 1
        tally.trained[trained] += 1
        tally.messages[n_messages] += 1
        tally.total_tokens += total
        tally.assistant_tokens += trained
        tally.billable_tokens += billable
        if longest > limit:
            tally.n_over_limit += 1
            tally.add(
                line,
                "too_many_tokens",
                f"the example has {longest:,} tokens; the model trains on at most {limit:,} "
                "per example: shorten it or split it",
                self.config.max_per_code,
            )


_counters: dict[str, TokenCounter] = {}
_counters_lock = threading.Lock()


def token_counter(encoding: str) -> TokenCounter:
    """The process's counter for ``encoding`` (its cache of repeated strings is shared).

    Safe from any thread: the counter's cache is a plain dict whose reads and writes are
    atomic, and creating the counter is locked so that every thread gets the same one.
    """
    counter = _counters.get(encoding)
    if counter is None:
        with _counters_lock:
            counter = _counters.get(encoding)
            if counter is None:
                counter = _counters[encoding] = TokenCounter(get_encoding(encoding))
    return counter


def warm_up(encoding: str) -> None:
    """Load ``encoding`` in this process now (a worker does before its first range)."""
    token_counter(encoding)


def check_chunk(config: CheckConfig, chunk: bytes, *, file_start: bool) -> Tally:
    """Check a chunk of whole lines of a JSONL file, numbering them from 1.

    ``file_start`` says the chunk begins the file (where a byte order mark is looked for).
    """
    checker = Checker(config, token_counter(config.encoding))
    tally = Tally()
    lines = chunk.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the chunk ends with a newline: no line after it
    for line, raw in enumerate(lines, 1):
        checker.line(tally, raw, line, first_of_file=file_start and line == 1)
    return tally


def check_range(config: CheckConfig, path: str, start: int, end: int) -> Tally:
    """Check bytes ``start:end`` of the file at ``path`` (whole lines), numbered from 1.

    This is what worker processes run: each reads its own range, so the parent sends a few
    numbers per task instead of the data. The serial path runs it too, so both agree exactly.
    Pure and thread-safe: it keeps no state between calls but the shared token counter.
    """
    with open(path, "rb") as file:  # noqa: PTH123 - a plain path string crosses processes
        file.seek(start)
        chunk = file.read(end - start)
    return check_chunk(config, chunk, file_start=start == 0)


def check_records(config: CheckConfig, records: Sequence[object]) -> Tally:
    """Check in-memory records; each one's 1-based position is its line."""
    checker = Checker(config, token_counter(config.encoding))
    tally = Tally()
    for i, record in enumerate(records, 1):
        checker.record(tally, record, i)
    return tally
