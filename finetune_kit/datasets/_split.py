"""Splitting a dataset into training and validation data, in two streaming passes.

The first pass keeps, per example, an 8-byte hash of its canonical JSON and (for stratifying)
a small label number: about 20 bytes an example, whatever the examples hold. Identical
examples form one *unit*, the atom of the split, so an example is never on both sides; the
units of each label (one stratum when not stratifying) are shuffled with the seed and the
first ``fraction`` of them go to validation. The second pass writes each line of the file to
one of two files. A 1M-example file is split with a few tens of MB.

The choice is the same as the one made with every record in memory before splitting streamed
(the same seed gives the same split): units are numbered in order of first appearance,
strata visited in sorted order, and each shuffled with ``random.Random(seed).shuffle``, whose
draws depend only on the length of what is shuffled.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import weakref
from array import array
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .._exceptions import DatasetError
from . import _source
from ._codes import CLASSIFICATION_MAX_LABELS
from ._examples import label_of, looks_like_classification
from ._finish import duplicates

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    from ._reports import DatasetKind

__all__ = [
    "TemporaryDirectory",
    "canonical",
    "check_test_size",
    "choose_validation",
    "split_file",
    "write_split",
]

_MASK: Final = 0xFFFF_FFFF_FFFF_FFFF
_NO_LABEL: Final = -1


def canonical(record: object) -> str:
    """The example as sorted-key JSON: identical examples, identical strings."""
    try:
        return json.dumps(record, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(record)


def check_test_size(test_size: float, n: int | None) -> float:
    """``test_size`` as a fraction of ``n`` examples (None: not known yet, check the type).

    Raises:
        ValueError: not a fraction in (0, 1) nor a count in [1, n - 1].
    """
    fits = not isinstance(test_size, bool) and (
        (isinstance(test_size, int) and test_size > 0 and (n is None or test_size < n))
        or (isinstance(test_size, float) and 0 < test_size < 1)
    )
    if not fits:
        top = "n - 1" if n is None else f"{n - 1}"
        raise ValueError(
            f"test_size must be a fraction in (0, 1) or a count in [1, {top}]; got {test_size!r}"
        )
    return test_size / n if isinstance(test_size, int) and n else float(test_size)


def choose_validation(
    records: Iterable[object],
    kind: DatasetKind,
    *,
    test_size: float,
    seed: int,
    stratify: bool | None,
) -> bytearray:
    """Which examples go to validation: ``flags[i]`` is 1 for the i-th example.

    Raises:
        ValueError: a bad ``test_size``, ``stratify=True`` without classification labels, or
            fewer than two distinct examples.
    """
    check_test_size(test_size, None)
    hashes: array[int] = array("Q")
    labels: array[int] | None = array("i") if kind == "chat" else None
    names: dict[str, int] = {}
    for record in records:
        hashes.append((hash(canonical(record)) & _MASK) or 1)
        if labels is None:
            continue
        label = label_of(record)
        if label is None or (label not in names and len(names) >= CLASSIFICATION_MAX_LABELS):
            labels = None  # not classification data: labels are no use
            continue
        labels.append(names.setdefault(label, len(names)))
    n = len(hashes)
    fraction = check_test_size(test_size, n)
    if labels is not None:
        counts = Counter({name: labels.count(number) for name, number in names.items()})
        if not looks_like_classification(counts, n):
            labels = None
    if stratify and labels is None:
        raise ValueError("stratify=True needs classification data (see Dataset.labels)")
    use_labels = labels if stratify is not False else None
    # Each example's unit: the position of the first example identical to it.
    unit = array("q", range(n))
    for line, first in duplicates(hashes):
        unit[line - 1] = first - 1
    del hashes
    # Strata of units in order of first appearance, keyed by label name (sorted below).
    strata: dict[str, array[int]] = {}
    by_number = {number: name for name, number in names.items()}
    n_units = 0
    for i in range(n):
        if unit[i] == i:
            key = by_number[use_labels[i]] if use_labels is not None else ""
            strata.setdefault(key, array("q")).append(i)
            n_units += 1
    if n_units < 2:
        raise ValueError("cannot split fewer than two distinct examples")
    rng = random.Random(seed)
    chosen = bytearray(n)
    for key in sorted(strata):
        group = strata[key]
        rng.shuffle(group)  # an array shuffles exactly as a list of the same length would
        if len(group) < 2:
            continue
        take = min(len(group) - 1, max(1, math.floor(len(group) * fraction + 0.5)))
        for i in group[:take]:
            chosen[i] = 1
    return bytearray(chosen[unit[i]] for i in range(n))


def write_split(
    source: Path, flags: bytearray, train: Path, validation: Path, *, stamp: _source.Stamp
) -> None:
    """Write each example line of ``source`` to ``validation`` (flag 1) or ``train`` (0).

    Lines are copied byte for byte (a missing final newline added, a byte order mark and blank
    lines dropped). Both files appear whole or not at all.

    Raises:
        DatasetError: the file changed since ``stamp`` (taken before ``flags`` were chosen), or
            cannot be read.
    """
    temps = [_temporary(train), _temporary(validation)]
    try:
        with temps[0].open("wb") as train_out, temps[1].open("wb") as valid_out:
            outs = (train_out, valid_out)
            count = 0
            for count, (_, raw, _record) in enumerate(_source.examples(source), 1):
                if count > len(flags):
                    break
                out = outs[flags[count - 1]]
                out.write(raw)
                if not raw.endswith(b"\n"):
                    out.write(b"\n")
        if count != len(flags) or _source.stamp(source) != stamp:
            raise DatasetError(f"{source} changed while it was being split: split it again")
        temps[0].replace(train)
        temps[1].replace(validation)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{random.getrandbits(32):08x}.tmp")


class TemporaryDirectory:
    """A directory removed when the last object holding it is garbage-collected."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="finetune_kit-split-"))
        weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)


def split_file(
    path: Path,
    kind: DatasetKind,
    *,
    test_size: float,
    seed: int,
    stratify: bool | None,
    into: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None,
) -> tuple[Path, Path, TemporaryDirectory | None]:
    """Split the file at ``path`` into two files, streaming: (train, validation, owner).

    The files are ``into``, or two files in a new :class:`TemporaryDirectory` (the owner,
    which whoever uses the files keeps alive; None when ``into`` is given).
    """
    at = _source.stamp(path)
    flags = choose_validation(
        (r for _, _, r in _source.examples(path)),
        kind,
        test_size=test_size,
        seed=seed,
        stratify=stratify,
    )
    owner = TemporaryDirectory() if into is None else None
    if owner is not None:
        train = owner.path / f"{path.stem}.train.jsonl"
        valid = owner.path / f"{path.stem}.validation.jsonl"
    else:
        assert into is not None
        train, valid = Path(into[0]), Path(into[1])
    write_split(path, flags, train, valid, stamp=at)
    return train, valid, owner
