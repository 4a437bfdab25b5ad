"""Dataset.split: the same choice as before it streamed, flat memory for files, files out."""

from __future__ import annotations

import gc
import json
import math
import random
import tracemalloc
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Dataset, DatasetError
from finetune_kit.datasets import _split
from finetune_kit.datasets._examples import label_of, looks_like_classification

from .test_dataset import chat, write

if TYPE_CHECKING:
    from pathlib import Path


def reference_split(
    records: list[Any], kind: str, test_size: float, seed: int, stratify: bool | None
) -> tuple[list[Any], list[Any]]:
    """The split as it was computed with every record in memory (finetune_kit 0.x), verbatim."""
    n = len(records)
    fraction = test_size / n if isinstance(test_size, int) else test_size
    labels: list[str] | None = None
    if kind == "chat":
        found = [label_of(r) for r in records]
        if all(label is not None for label in found):
            named = [label for label in found if label is not None]
            labels = named if looks_like_classification(Counter(named), n) else None
    use_labels = labels if stratify is not False else None
    units: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        units.setdefault(json.dumps(record, sort_keys=True, ensure_ascii=False), []).append(i)
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
        [r for i, r in enumerate(records) if i not in chosen],
        [records[i] for i in sorted(chosen)],
    )


def _rows(n_labels: int) -> list[Any]:
    rng = random.Random(n_labels)
    answers = [f"label{k}" for k in range(n_labels)] if n_labels else None
    rows = [chat(i, rng.choice(answers) if answers else None) for i in range(300)]
    rows += [rows[7], rows[7], rows[42]]  # duplicates stay together
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize(
    ("n_labels", "test_size", "stratify"),
    [(0, 0.2, None), (4, 0.25, None), (4, 30, False), (7, 0.1, True), (3, 0.5, None)],
)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_the_same_seed_gives_the_same_split_as_before(
    tmp_path: Path, n_labels: int, test_size: float, stratify: bool | None, seed: int
) -> None:
    rows = _rows(n_labels)
    expected = reference_split(rows, "chat", test_size, seed, stratify)
    in_memory = Dataset.from_records(rows).split(test_size, seed=seed, stratify=stratify)
    from_file = Dataset.from_jsonl(write(tmp_path / "d.jsonl", rows)).split(
        test_size, seed=seed, stratify=stratify
    )
    for got in (in_memory, from_file):
        assert (list(got[0]), list(got[1])) == expected


def test_a_file_splits_into_files_of_its_own_lines(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(20)]
    path = tmp_path / "d.jsonl"
    # Original formatting (spaces, key order, escapes) is kept; the BOM and blank lines are not.
    lines = [json.dumps(r, indent=None, ensure_ascii=True) for r in rows]
    path.write_bytes(b"\xef\xbb\xbf" + "\n\n".join(lines).encode())  # no final newline
    train, valid = Dataset.from_jsonl(path).split(
        0.25, seed=3, into=(tmp_path / "t", tmp_path / "v")
    )
    assert (train.path, valid.path) == (tmp_path / "t", tmp_path / "v")
    written = (tmp_path / "t").read_bytes() + (tmp_path / "v").read_bytes()
    assert sorted(written.decode().splitlines()) == sorted(lines)
    assert (len(train), len(valid)) == (15, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "t", "v"]  # no leftovers


def test_the_temporary_files_go_with_the_datasets(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(10)])
    train, valid = Dataset.from_jsonl(path).split(0.3)
    assert train.path is not None
    assert valid.path is not None
    folder = train.path.parent
    assert valid.path.parent == folder
    assert [train.path.name, valid.path.name] == ["d.train.jsonl", "d.validation.jsonl"]
    del train
    gc.collect()
    assert folder.exists()  # the validation part still lives there
    del valid
    gc.collect()
    assert not folder.exists()


def test_in_memory_data_can_be_written_on_split(tmp_path: Path) -> None:
    ds = Dataset.from_records([chat(i) for i in range(10)])
    train, valid = ds.split(0.3, into=(tmp_path / "t.jsonl", tmp_path / "v.jsonl"))
    assert train.path == tmp_path / "t.jsonl"
    assert valid.path == tmp_path / "v.jsonl"
    assert sorted(json.dumps(r) for r in [*train, *valid]) == sorted(json.dumps(r) for r in ds)


def test_a_file_that_changes_while_it_is_split_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(10)])
    choose = _split.choose_validation

    def then_append(*args: Any, **kwargs: Any) -> bytearray:
        flags = choose(*args, **kwargs)
        with path.open("a") as file:  # someone appends between the two passes
            file.write(json.dumps(chat(99)) + "\n")
        return flags

    monkeypatch.setattr(_split, "choose_validation", then_append)
    with pytest.raises(DatasetError, match="changed while it was being split"):
        Dataset.from_jsonl(path).split(0.3, into=(tmp_path / "t", tmp_path / "v"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]


def test_a_bad_line_stops_the_split(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(10)])
    with path.open("a") as file:
        file.write("[1, 2]\n")
    with pytest.raises(DatasetError, match="line 11"):
        Dataset.from_jsonl(path).split(0.3)


def _peak_split(path: Path, tmp_path: Path) -> int:
    tracemalloc.start()
    try:
        Dataset.from_jsonl(path).split(0.2, into=(tmp_path / "t", tmp_path / "v"))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_splitting_a_file_streams(tmp_path: Path) -> None:
    small = write(tmp_path / "small.jsonl", [chat(i, words=200) for i in range(300)])
    large = write(tmp_path / "large.jsonl", [chat(i, words=200) for i in range(1_500)])
    growth_file = large.stat().st_size - small.stat().st_size
    growth_peak = _peak_split(large, tmp_path) - _peak_split(small, tmp_path)
    # The file grows by ~1.8 MB; the split keeps a few dozen bytes per example.
    assert growth_peak < growth_file / 20, (growth_peak, growth_file)
