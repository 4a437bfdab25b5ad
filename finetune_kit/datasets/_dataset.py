"""Dataset: training examples in memory or in a JSONL file, validated, counted, priced, split.

A file-backed dataset is never loaded whole to validate, count or price it: the file is read in
chunks of lines, each checked into a small tally (``_validation.py``), and the tallies merged,
so memory stays flat however large the file. Large files are checked by worker processes, one
per core, because tokenizing is the bulk of the work and one core cannot keep up with the
file. The result of a pass is remembered per model until the file changes (size or mtime), so
``validate`` then ``stats`` then ``estimate_cost`` read the file once.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, get_args

from .._exceptions import DatasetError
from ..facts._models import DEFAULT_TRAINING_CONTEXT, PRICE_DATE, default_n_epochs, model_facts
from ..facts._tokens import encoding_name_for_model
from . import _validation as v
from ._reports import CostEstimate, DatasetKind, DatasetStats, ValidationReport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import openai

    from .._core.retry import RetryPolicy

__all__ = ["Dataset"]

logger = logging.getLogger("finetune_kit")

_KINDS: Final = frozenset(get_args(DatasetKind))
_CHUNK_BYTES: Final = 1 << 20
#: Files at least this large are checked by several processes when ``workers`` is not given.
PARALLEL_MIN_BYTES: Final = 8 << 20
_RFT_NOTE: Final = (
    "reinforcement fine-tuning is billed per hour of training ($100/h on o4-mini), not per token"
)

T = TypeVar("T")
Record = dict[str, Any]
_Stamp = tuple[int, int] | None


class Dataset:
    """Training examples, from a JSONL file or from memory.

    Build one with :meth:`from_jsonl`, :meth:`from_records`, :meth:`from_pairs` or
    :meth:`from_labels`. Iterating yields the examples as dicts. The format (``kind``) is
    detected from the first examples unless forced with ``kind=``.
    """

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]] = (),
        *,
        kind: DatasetKind | None = None,
        _path: Path | None = None,
    ) -> None:
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {kind!r}")
        self._path = _path
        self._records: list[Any] | None = None if _path is not None else list(records)
        self._forced_kind: DatasetKind | None = kind
        self._lock = threading.Lock()
        # Results of passes over the file, remembered with the file's (size, mtime).
        self._memo: dict[object, tuple[_Stamp, Any]] = {}

    # --- construction ------------------------------------------------------------------

    @classmethod
    def from_jsonl(
        cls, path: str | os.PathLike[str], *, kind: DatasetKind | None = None
    ) -> Dataset:
        """A dataset backed by a JSONL file (one example per line); nothing is read yet.

        Raises:
            DatasetError: ``path`` is not a readable file.
        """
        file = Path(path)
        if not file.is_file():
            what = "is a directory" if file.is_dir() else "does not exist"
            raise DatasetError(f"{file} {what}: give the path of a JSONL file")
        if not os.access(file, os.R_OK):
            raise DatasetError(f"{file} is not readable (permission denied)")
        return cls(kind=kind, _path=file)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], *, kind: DatasetKind | None = None
    ) -> Dataset:
        """A dataset of in-memory examples (dicts in one of the training formats)."""
        return cls(records, kind=kind)

    @classmethod
    def from_pairs(
        cls, inputs: Iterable[str], outputs: Iterable[str], *, system: str | None = None
    ) -> Dataset:
        """Chat examples from (user input, assistant output) pairs, with an optional system.

        Raises:
            ValueError: ``inputs`` and ``outputs`` differ in length.
        """
        ins, outs = list(inputs), list(outputs)
        if len(ins) != len(outs):
            raise ValueError(f"{len(ins)} inputs but {len(outs)} outputs: they must pair up")
        head = [{"role": "system", "content": system}] if system is not None else []
        return cls(
            (
                {
                    "messages": [
                        *head,
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": answer},
                    ]
                }
                for text, answer in zip(ins, outs, strict=True)
            ),
            kind="chat",
        )

    @classmethod
    def from_labels(
        cls, texts: Iterable[str], labels: Iterable[str], *, system: str | None = None
    ) -> Dataset:
        """Classification examples: each text as the user turn, its label as the answer.

        Raises:
            ValueError: lengths differ, or a label is not a non-empty string.
        """
        names = list(labels)
        bad = [label for label in names if not isinstance(label, str) or not label]
        if bad:
            raise ValueError(f"labels must be non-empty strings; got {bad[0]!r}")
        return cls.from_pairs(texts, names, system=system)

    # --- what it holds -----------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The backing file, or None for an in-memory dataset."""
        return self._path

    @property
    def kind(self) -> DatasetKind:
        """``chat``, ``preference``, ``reinforcement`` or ``completion`` (forced or detected)."""
        if self._forced_kind is not None:
            return self._forced_kind
        if self._records is not None:
            return v.detect_kind(self._records)
        return self._remember("kind", lambda: v.detect_kind(self._peek()))

    def __len__(self) -> int:
        if self._records is not None:
            return len(self._records)
        return self._remember("len", self._count_lines)

    def __iter__(self) -> Iterator[Record]:
        """The examples as dicts.

        Raises:
            DatasetError: a line of the file is not a JSON object (validate to see them all).
        """
        if self._records is not None:
            yield from self._records
            return
        for line, raw in self._lines():
            try:
                record = json.loads(raw.decode("utf-8-sig" if line == 1 else "utf-8"))
            except (ValueError, RecursionError) as exc:
                raise DatasetError(f"{self._path}: line {line}: invalid JSON: {exc}") from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{self._path}: line {line}: not a JSON object")
            yield record

    def __repr__(self) -> str:
        # No I/O here: the kind of a file-backed dataset is shown only when forced.
        where = f"path={str(self._path)!r}" if self._path else f"{len(self)} records"
        kind = self._forced_kind or (self.kind if self._records is not None else None)
        return f"Dataset({where}" + (f", kind={kind!r})" if kind else ")")

    @property
    def labels(self) -> list[str] | None:
        """Each example's label for classification data, else None.

        Data is classification when it is chat data in which every example ends with a short
        assistant answer (at most 64 characters, no tool calls) and the answers form a small
        set: 2 to ``min(50, max(2, n // 2))`` distinct values.
        """
        return self._remember("labels", self._compute_labels)

    @property
    def is_classification(self) -> bool:
        """Whether :attr:`labels` finds a small set of short answers (see there)."""
        return self.labels is not None

    # --- checks and numbers ------------------------------------------------------------

    def validate(
        self,
        model: str | None = None,
        *,
        workers: int | None = None,
        role: Literal["training", "validation"] = "training",
    ) -> ValidationReport:
        """Check every example; problems carry a line, a stable code and an actionable message.

        Args:
            model: check against this model's facts (training context, encoding, formats it
                trains on, label tokens); None checks the structure with o200k_base.
            workers: processes to use; None decides by file size, 1 never forks.
            role: what the data is for. The service's minimum of 10 examples applies to
                training data only; a validation set may be smaller (every other rule holds).

        Returns:
            The report; call ``raise_for_errors()`` on it to stop on errors.
        """
        report = self._analyze(model, workers)[0]
        if role == "validation" and "too_few_examples" in report.counts:
            counts = {c: n for c, n in report.counts.items() if c != "too_few_examples"}
            kept = [p for p in report.problems if p.code != "too_few_examples"]
            report = report.model_copy(update={"problems": kept, "counts": counts})
        return report

    def stats(self, model: str | None = None, *, workers: int | None = None) -> DatasetStats:
        """Token and message statistics in ``model``'s encoding (o200k_base when None)."""
        return self._analyze(model, workers)[1]

    def estimate_cost(
        self,
        model: str,
        *,
        n_epochs: int | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> CostEstimate:
        """An upper bound on the training cost of this dataset on ``model``.

        Args:
            model: the model to fine-tune (base, snapshot or ``ft:`` name).
            n_epochs: epochs; None applies the service's default rule.
            prices: USD per 1M training tokens by model name, overriding the dated table.

        Raises:
            ValueError: ``n_epochs`` is not a positive integer.
        """
        if n_epochs is not None and (isinstance(n_epochs, bool) or n_epochs < 1):
            raise ValueError(f"n_epochs must be a positive integer, not {n_epochs!r}")
        stats = self._analyze(model, None)[1]
        facts = model_facts(model)
        epochs = n_epochs if n_epochs is not None else default_n_epochs(stats.n_examples)
        trained = stats.billable_tokens * epochs
        override = _lookup_price(prices, model, facts.base)
        price = override if override is not None else facts.price_per_mtok
        source: Literal["catalog", "override", "unknown"] = (
            "override" if override is not None else "catalog" if price else "unknown"
        )
        note = None
        if stats.kind == "reinforcement" and override is None:
            price, source, note = None, "unknown", _RFT_NOTE
        elif price is None:
            note = f"no price known for {facts.base}: pass prices={{{facts.base!r}: USD per 1M}}"
        # Rounded up to the cent: an estimate that must never be below the bill.
        usd = math.ceil(trained * price / 1e4) / 100 if price is not None else None
        return CostEstimate(
            model=model,
            base_model=facts.base,
            n_examples=stats.n_examples,
            n_epochs=epochs,
            n_epochs_source="given" if n_epochs is not None else "default",
            billable_tokens=stats.billable_tokens,
            trained_tokens=trained,
            price_per_mtok=price,
            usd=usd,
            price_date=PRICE_DATE,
            price_source=source,
            note=note,
        )

    # --- splitting and writing ---------------------------------------------------------

    def split(
        self, test_size: float = 0.2, *, seed: int = 0, stratify: bool | None = None
    ) -> tuple[Dataset, Dataset]:
        """Split into (train, validation), deterministically for a given ``seed``.

        Identical examples always land on the same side, so no example is in both. With
        ``stratify`` (the default for classification data) every label with at least two
        examples is on both sides, in about the same proportion.

        Args:
            test_size: fraction of examples for validation (0 < x < 1), or a count.
            seed: the random seed; the same seed gives the same split.
            stratify: None stratifies classification data; True requires it; False never.

        Raises:
            ValueError: a bad ``test_size``, ``stratify=True`` without labels, or fewer than
                two distinct examples.
            DatasetError: a line of the file is not a JSON object.
        """
        records = list(self)
        n = len(records)
        if isinstance(test_size, bool) or not (
            (isinstance(test_size, int) and 0 < test_size < n)
            or (isinstance(test_size, float) and 0 < test_size < 1)
        ):
            raise ValueError(
                f"test_size must be a fraction in (0, 1) or a count in [1, {n - 1}]; "
                f"got {test_size!r}"
            )
        fraction = test_size / n if isinstance(test_size, int) else test_size
        labels = _labels_of(records, self.kind)
        if stratify and labels is None:
            raise ValueError("stratify=True needs classification data (see Dataset.labels)")
        use_labels = labels if stratify is not False else None
        # Units of identical examples: the atom of the split.
        units: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            units.setdefault(_canonical(record), []).append(i)
        if len(units) < 2:
            raise ValueError("cannot split fewer than two distinct examples")
        strata: dict[str, list[list[int]]] = {}
        for members in units.values():
            key = use_labels[members[0]] if use_labels is not None else ""
            strata.setdefault(key, []).append(members)
        rng = random.Random(seed)
        test: list[int] = []
        for key in sorted(strata):
            group = strata[key]
            rng.shuffle(group)
            if len(group) < 2:
                continue
            take = min(len(group) - 1, max(1, math.floor(len(group) * fraction + 0.5)))
            test.extend(i for members in group[:take] for i in members)
        chosen = set(test)
        return (
            Dataset([r for i, r in enumerate(records) if i not in chosen], kind=self.kind),
            Dataset([records[i] for i in sorted(chosen)], kind=self.kind),
        )

    def to_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write the examples as JSONL, atomically (a reader never sees a partial file).

        A file-backed dataset is copied byte for byte; in-memory records are written one
        compact JSON object per line (UTF-8, not ASCII-escaped, ``\\n`` endings).

        Returns:
            The path written.

        Raises:
            DatasetError: a record cannot be written as JSON.
        """
        target = Path(path)
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for block in self._byte_blocks():
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            Path(tmp).chmod(mode)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._memo.clear()
        return target

    def to_jsonl_bytes(self) -> bytes:
        """Exactly the bytes :meth:`to_jsonl` writes (and an upload sends)."""
        return b"".join(self._byte_blocks())

    def content_hash(self) -> str:
        """SHA-256 (hex) of :meth:`to_jsonl_bytes`, computed without holding them all."""
        digest = hashlib.sha256()
        for block in self._byte_blocks():
            digest.update(block)
        return digest.hexdigest()

    # --- uploading (the service side lives in _upload.py) --------------------------------

    def upload(
        self,
        *,
        client: openai.OpenAI | None = None,
        validate: bool = True,
        retry: RetryPolicy | None = None,
    ) -> str:
        """Upload for fine-tuning (reusing an identical earlier upload); return the file id."""
        from ._upload import upload_dataset

        return upload_dataset(self, client=client, validate=validate, retry=retry)

    async def aupload(
        self,
        *,
        client: openai.AsyncOpenAI | None = None,
        validate: bool = True,
        retry: RetryPolicy | None = None,
    ) -> str:
        """Async :meth:`upload`."""
        from ._upload import aupload_dataset

        return await aupload_dataset(self, client=client, validate=validate, retry=retry)

    # --- internals ---------------------------------------------------------------------

    def _stamp(self) -> _Stamp:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError as exc:
            raise DatasetError(f"{self._path} cannot be read: {exc}") from exc
        return (st.st_size, st.st_mtime_ns)

    def _remember(self, key: object, compute: Callable[[], T]) -> T:
        """A pass over a file's content, remembered until the file changes.

        In-memory records are not remembered: the caller may mutate them between calls.
        """
        if self._path is None:
            return compute()
        stamp = self._stamp()
        with self._lock:
            hit = self._memo.get(key)
        if hit is not None and hit[0] == stamp:
            return cast("T", hit[1])
        value = compute()
        with self._lock:
            self._memo[key] = (stamp, value)
        return value

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """Non-blank lines of the file with their 1-based numbers."""
        assert self._path is not None
        try:
            with self._path.open("rb") as file:
                for number, raw in enumerate(file, 1):
                    if raw.strip():
                        yield number, raw
        except OSError as exc:
            raise DatasetError(f"{self._path} cannot be read: {exc}") from exc

    def _fingerprints(self) -> Iterator[tuple[int, bytes]]:
        """Each parseable example's position (line, or 1-based index) and a digest of it.

        Lines that are not JSON are skipped: validation reports them; this only compares.
        """
        if self._records is not None:
            for number, record in enumerate(self._records, 1):
                yield number, _fingerprint(record)
            return
        for number, raw in self._lines():
            try:
                record = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
            except (ValueError, RecursionError):
                continue
            yield number, _fingerprint(record)

    def _count_lines(self) -> int:
        return sum(1 for _ in self._lines())

    def _peek(self) -> Iterator[object]:
        """The first parseable examples of the file, for format detection."""
        for line, raw in self._lines():
            try:
                yield json.loads(raw.decode("utf-8-sig" if line == 1 else "utf-8"))
            except (ValueError, RecursionError):
                continue

    def _compute_labels(self) -> list[str] | None:
        try:
            return _labels_of(self, self.kind)
        except DatasetError:
            return None

    def _byte_blocks(self) -> Iterator[bytes]:
        if self._path is not None:
            try:
                with self._path.open("rb") as file:
                    while block := file.read(_CHUNK_BYTES):
                        yield block
            except OSError as exc:
                raise DatasetError(f"{self._path} cannot be read: {exc}") from exc
            return
        assert self._records is not None
        for i, record in enumerate(self._records, 1):
            try:
                text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                yield text.encode("utf-8") + b"\n"
            except (TypeError, ValueError, RecursionError) as exc:
                raise DatasetError(f"record {i} cannot be written as JSON: {exc}") from exc

    def _analyze(
        self, model: str | None, workers: int | None
    ) -> tuple[ValidationReport, DatasetStats]:
        if model is not None:
            encoding = encoding_name_for_model(model)
            facts = model_facts(model)
            context = facts.training_context
        else:
            encoding, facts, context = "o200k_base", None, DEFAULT_TRAINING_CONTEXT
        kind = self.kind
        config = v.CheckConfig(kind=kind, encoding=encoding, training_context=context)

        def run() -> tuple[ValidationReport, DatasetStats]:
            stamp = self._stamp()
            size = stamp[0] if stamp is not None else None
            if self._records is not None:
                tally = v.check_records(config, self._records)
            else:
                tally = self._check_file(config, _plan_workers(workers, size or 0))
            dataset = v.DatasetFacts(
                source=str(self._path) if self._path else None,
                kind=kind,
                model=model,
                facts=facts,
                size_bytes=size,
            )
            return v.finish(tally, config, dataset)

        result: tuple[ValidationReport, DatasetStats] = self._remember(("analysis", model), run)
        return result

    def _check_file(self, config: v.CheckConfig, workers: int) -> v.Tally:
        assert self._path is not None
        total = v.Tally()
        keep = config.max_per_code
        path = str(self._path)
        try:
            ranges = _ranges(self._path)
            if workers <= 1:
                for start, end in ranges:
                    total.merge(v.check_range(config, path, start, end), keep)
                return total
            v.warm_up(config.encoding)  # forked workers inherit the loaded encoding
            logger.debug("checking %s with %d worker processes", self._path, workers)
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                # Workers read their own ranges; results (small tallies) come back in order.
                tasks = [(config, path, start, end) for start, end in ranges]
                for tally in pool.imap(_check_range_task, tasks):
                    total.merge(tally, keep)
        except OSError as exc:
            raise DatasetError(f"{self._path} cannot be read: {exc}") from exc
        return total

    # --- DataFrames and Hugging Face datasets (logic in finetune_kit.display._frames) -----

    @classmethod
    def from_pandas(
        cls,
        frame: Any,
        *,
        text: str | None = None,
        label: str | None = None,
        system: str | None = None,
        messages: str | None = None,
    ) -> Dataset:
        """Labelled texts (``text=``, ``label=`` columns, optional ``system`` prompt) or chat
        rows (a ``messages=`` column of role/content dicts) from a pandas DataFrame.

        Raises:
            DatasetError: a column is missing or a row's value is unusable (both named).
        """
        from ..display import _frames

        return _frames.dataset_from_pandas(
            frame, text=text, label=label, system=system, messages=messages
        )

    def to_pandas(self) -> Any:
        """A DataFrame with one row per example and one column per top-level key."""
        from ..display import _frames

        return _frames.dataset_to_pandas(self)

    @classmethod
    def from_hf(
        cls,
        data: Any,
        *,
        text: str | None = None,
        label: str | None = None,
        system: str | None = None,
        messages: str | None = None,
    ) -> Dataset:
        """Like :meth:`from_pandas`, from a Hugging Face ``datasets.Dataset``."""
        from ..display import _frames

        return _frames.dataset_from_hf(
            data, text=text, label=label, system=system, messages=messages
        )

    def to_hf(self) -> Any:
        """A Hugging Face ``datasets.Dataset`` (chat data in TRL's ``messages`` format)."""
        from ..display import _frames

        return _frames.dataset_to_hf(self)


def _check_range_task(task: tuple[v.CheckConfig, str, int, int]) -> v.Tally:
    return v.check_range(*task)


def _ranges(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of about ``_CHUNK_BYTES`` that start and end on line boundaries.

    Found by seeking, not reading: only one line per range is read here.
    """
    size = path.stat().st_size
    bounds = [0]
    with path.open("rb") as file:
        while bounds[-1] + _CHUNK_BYTES < size:
            file.seek(bounds[-1] + _CHUNK_BYTES)
            file.readline()  # to the end of the line the seek landed in
            if file.tell() >= size:
                break
            bounds.append(file.tell())
    bounds.append(size)
    return list(itertools.pairwise(bounds))


def _plan_workers(workers: int | None, size: int) -> int:
    """How many processes check a file: forking only where it is safe and worth it."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wanted = workers if workers is not None else (cores or 1) if size >= PARALLEL_MIN_BYTES else 1
    if wanted <= 1:
        return 1
    # fork is the only start method that does not re-import the caller's __main__, and it is
    # unsafe with other threads running (or on macOS): then we stay in one process.
    if sys.platform == "darwin" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if threading.active_count() > 1:
        logger.debug("other threads are running: checking in one process")
        return 1
    return wanted


def _lookup_price(prices: Mapping[str, float] | None, model: str, base: str) -> float | None:
    if not prices:
        return None
    for name in (model, model.lower(), base):
        if name in prices:
            return float(prices[name])
    return None


def shared_examples(training: Dataset, validation: Dataset) -> list[tuple[int, int]]:
    """Examples of ``validation`` that are also in ``training``: (validation line, training line).

    Lines are 1-based file lines (or positions, for in-memory data). Both sides are streamed;
    only a 16-byte digest per training example is kept, so large files stay cheap.
    """
    seen: dict[bytes, int] = {}
    for number, digest in training._fingerprints():
        seen.setdefault(digest, number)
    return [
        (number, seen[digest]) for number, digest in validation._fingerprints() if digest in seen
    ]


def _fingerprint(record: object) -> bytes:
    return hashlib.blake2b(_canonical(record).encode(), digest_size=16).digest()


def _canonical(record: object) -> str:
    try:
        return json.dumps(record, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(record)


def _labels_of(records: Iterable[object], kind: DatasetKind) -> list[str] | None:
    if kind != "chat":
        return None
    labels: list[str] = []
    for record in records:
        label = v.label_of(record)
        if label is None:
            return None
        labels.append(label)
    counts = collections.Counter(labels)
    return labels if v.looks_like_classification(counts, len(labels)) else None
