"""Dataset: training examples in memory or in a JSONL file, validated, counted, priced, split.

A file-backed dataset is never loaded whole: validating, counting and pricing read the file in
ranges of lines, each checked into a small tally (``_checker.py``) and the tallies merged;
large files are checked by worker processes, one per core (``_parallel.py``); splitting and
uploading stream too (``_split.py``, ``_upload.py``). The result of a pass is remembered per
model until the file changes (size or mtime), so ``validate`` then ``stats`` then
``estimate_cost`` read the file once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, get_args

from .._exceptions import DatasetError
from ..facts._models import DEFAULT_TRAINING_CONTEXT, model_facts
from ..facts._tokens import encoding_name_for_model
from . import _source
from ._checker import CheckConfig, check_records
from ._cost import estimate
from ._examples import detect_kind, label_of, looks_like_classification
from ._finish import DatasetFacts, finish
from ._overlap import fingerprint, shared_examples
from ._parallel import check_file, plan_workers
from ._reports import CostEstimate, DatasetKind, DatasetStats, ValidationReport
from ._source import Payload
from ._split import TemporaryDirectory, choose_validation, split_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import openai
    from typing_extensions import Unpack

    from .._core.retry import RetryPolicy
    from ._columns import FrameColumns

__all__ = ["Dataset", "shared_examples"]

logger = logging.getLogger("finetune_kit")

_KINDS: Final = frozenset(get_args(DatasetKind))

T = TypeVar("T")
Record = dict[str, Any]
_Stamp = tuple[int, int] | None


class Dataset:
    """Training examples, from a JSONL file or from memory.

    Build one with :meth:`from_jsonl`, :meth:`from_records`, :meth:`from_pairs` or
    :meth:`from_labels`. Iterating yields the examples as dicts. The format (``kind``) is
    detected from the first examples unless forced with ``kind=``.

    A dataset holds no thread-affine state: :meth:`validate`, :meth:`stats`,
    :meth:`estimate_cost`, :meth:`content_hash`, :attr:`labels`, :meth:`split` and the upload
    may run in any thread (an async entry point's worker thread, a web server's request
    threads), not only the one that built it, and at the same time: concurrent calls that need
    the same pass over a file wait for one another and share it. (Do not mutate the records of
    an in-memory dataset while another thread reads them.)
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
        # Results of passes over the file, remembered with the file's (size, mtime), and one
        # lock per pass, so that threads asking for the same pass at once read the file once.
        self._memo: dict[object, tuple[_Stamp, Any]] = {}
        self._pass_locks: dict[object, threading.Lock] = {}
        # The temporary directory holding this dataset's file (made by split): kept alive
        # by the datasets in it, removed after the last one.
        self._owned: TemporaryDirectory | None = None

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
            return detect_kind(self._records)
        path = self._path
        assert path is not None
        return self._remember("kind", lambda: detect_kind(r for _, _, r in _source.parsed(path)))

    def __len__(self) -> int:
        if self._records is not None:
            return len(self._records)
        path = self._path
        assert path is not None
        return self._remember("len", lambda: sum(1 for _ in _source.lines(path)))

    def __iter__(self) -> Iterator[Record]:
        """The examples as dicts.

        Raises:
            DatasetError: a line of the file is not a JSON object (validate to see them all).
        """
        if self._records is not None:
            yield from self._records
            return
        assert self._path is not None
        for _, _, record in _source.examples(self._path):
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
        return estimate(self._analyze(model, None)[1], model, n_epochs=n_epochs, prices=prices)

    # --- splitting and writing ---------------------------------------------------------

    def split(
        self,
        test_size: float = 0.2,
        *,
        seed: int = 0,
        stratify: bool | None = None,
        into: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    ) -> tuple[Dataset, Dataset]:
        """Split into (train, validation), deterministically for a given ``seed``.

        Identical examples always land on the same side, so no example is in both. With
        ``stratify`` (the default for classification data) every label with at least two
        examples is on both sides, in about the same proportion.

        A file-backed dataset is split in two streaming passes (memory stays flat whatever the
        file's size) into two JSONL files of its original lines: the paths in ``into``, or else
        two files in a new temporary directory, removed once both returned datasets are gone
        (``to_jsonl`` keeps a copy). An in-memory dataset splits into two in-memory datasets,
        also written to ``into`` when it is given.

        Args:
            test_size: fraction of examples for validation (0 < x < 1), or a count.
            seed: the random seed; the same seed gives the same split.
            stratify: None stratifies classification data; True requires it; False never.
            into: (train path, validation path) to write the two parts to.

        Raises:
            ValueError: a bad ``test_size``, ``stratify=True`` without labels, or fewer than
                two distinct examples.
            DatasetError: a line of the file is not a JSON object, or the file changed while
                it was being split.
        """
        kind = self.kind
        options: dict[str, Any] = {"test_size": test_size, "seed": seed, "stratify": stratify}
        if self._records is not None:
            records = self._records
            flags = choose_validation(records, kind, **options)
            parts = (
                Dataset([r for r, f in zip(records, flags, strict=False) if not f], kind=kind),
                Dataset([r for r, f in zip(records, flags, strict=False) if f], kind=kind),
            )
            if into is None:
                return parts
            return (
                Dataset.from_jsonl(parts[0].to_jsonl(into[0]), kind=kind),
                Dataset.from_jsonl(parts[1].to_jsonl(into[1]), kind=kind),
            )
        assert self._path is not None
        train, valid, owner = split_file(self._path, kind, into=into, **options)
        first, second = Dataset.from_jsonl(train, kind=kind), Dataset.from_jsonl(valid, kind=kind)
        first._owned = second._owned = owner
        return first, second

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
        with self._lock:
            self._memo.clear()
        return target

    def to_jsonl_bytes(self) -> bytes:
        """Exactly the bytes :meth:`to_jsonl` writes (and an upload sends), all in memory."""
        return b"".join(self._byte_blocks())

    def content_hash(self) -> str:
        """SHA-256 (hex) of :meth:`to_jsonl_bytes`, computed without holding them all.

        For a file, remembered until the file changes.
        """
        if self._path is not None:
            path = self._path
            return self._remember("sha256", lambda: _source.sha256_of(path))
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
        """Upload for fine-tuning (reusing an identical earlier upload); return the file id.

        A file is streamed from disk (hashed in blocks, sent in parts read as they go), so
        memory stays flat however large it is.
        """
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

    def _upload_payload(self) -> Payload:
        """The bytes an upload sends: the file (streamed), or the records' JSONL."""
        if self._path is None:
            return Payload.of_bytes(self.to_jsonl_bytes())
        path = self._path
        # The stamp first: a file rewritten while (or after) it is hashed is caught later.
        at = _source.stamp(path)
        digest = self._remember("sha256", lambda: _source.sha256_of(path))
        return Payload.of_file(path, digest, at)

    # --- internals ---------------------------------------------------------------------

    def _stamp(self) -> _Stamp:
        return _source.stamp(self._path) if self._path is not None else None

    def _remember(self, key: object, compute: Callable[[], T]) -> T:
        """A pass over a file's content, remembered until the file changes.

        In-memory records are not remembered: the caller may mutate them between calls.
        Threads asking for the same pass at once wait for the first one's result.
        """
        if self._path is None:
            return compute()
        with self._lock:
            gate = self._pass_locks.setdefault(key, threading.Lock())
        with gate:
            stamp = self._stamp()
            with self._lock:
                hit = self._memo.get(key)
            if hit is not None and hit[0] == stamp:
                return cast("T", hit[1])
            value = compute()
            with self._lock:
                self._memo[key] = (stamp, value)
            return value

    def _fingerprints(self) -> Iterator[tuple[int, bytes]]:
        """Each parseable example's position (line, or 1-based index) and a digest of it.

        Lines that are not JSON are skipped: validation reports them; this only compares.
        """
        if self._records is not None:
            for number, record in enumerate(self._records, 1):
                yield number, fingerprint(record)
            return
        assert self._path is not None
        for number, _, record in _source.parsed(self._path):
            yield number, fingerprint(record)

    def _compute_labels(self) -> list[str] | None:
        try:
            return _labels_of(self, self.kind)
        except DatasetError:
            return None

    def _byte_blocks(self) -> Iterator[bytes]:
        if self._path is not None:
            yield from _source.byte_blocks(self._path)
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
        config = CheckConfig(kind=kind, encoding=encoding, training_context=context)

        def run() -> tuple[ValidationReport, DatasetStats]:
            stamp = self._stamp()
            size = stamp[0] if stamp is not None else None
            if self._path is None:
                assert self._records is not None
                tally = check_records(config, self._records)
            else:
                tally = check_file(config, self._path, plan_workers(workers, size or 0))
            dataset = DatasetFacts(
                source=str(self._path) if self._path else None,
                kind=kind,
                model=model,
                facts=facts,
                size_bytes=size,
            )
            return finish(tally, config, dataset)

        result: tuple[ValidationReport, DatasetStats] = self._remember(("analysis", model), run)
        return result

    # --- DataFrames and Hugging Face datasets (logic in finetune_kit.display._frames) -----

    @classmethod
    def from_pandas(cls, frame: Any, **columns: Unpack[FrameColumns]) -> Dataset:
        """Labelled texts (``text=``, ``label=`` columns, optional ``system`` prompt) or chat
        rows (a ``messages=`` column of role/content dicts) from a pandas DataFrame.

        Args:
            frame: the DataFrame.
            **columns: ``text``, ``label``, ``system`` or ``messages`` (each described at
                :class:`~finetune_kit.datasets._columns.FrameColumns`).

        Raises:
            TypeError: both shapes or neither given, or an unknown keyword.
            DatasetError: a column is missing or a row's value is unusable (both named).
        """
        from ..display import _frames

        return _frames.dataset_from_pandas(frame, "Dataset.from_pandas()", columns)

    def to_pandas(self) -> Any:
        """A DataFrame with one row per example and one column per top-level key."""
        from ..display import _frames

        return _frames.dataset_to_pandas(self)

    @classmethod
    def from_hf(cls, data: Any, **columns: Unpack[FrameColumns]) -> Dataset:
        """Like :meth:`from_pandas`, from a Hugging Face ``datasets.Dataset``."""
        from ..display import _frames

        return _frames.dataset_from_hf(data, "Dataset.from_hf()", columns)

    def to_hf(self) -> Any:
        """A Hugging Face ``datasets.Dataset`` (chat data in TRL's ``messages`` format)."""
        from ..display import _frames

        return _frames.dataset_to_hf(self)


def _labels_of(records: Iterable[object], kind: DatasetKind) -> list[str] | None:
    if kind != "chat":
        return None
    labels: list[str] = []
    for record in records:
        label = label_of(record)
        if label is None:
            return None
        labels.append(label)
    return labels if looks_like_classification(Counter(labels), len(labels)) else None
