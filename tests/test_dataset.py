"""Dataset: construction, iteration, writing, statistics, cost, split, streaming, workers."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tracemalloc
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import CostEstimate, Dataset, DatasetError, Distribution, Histogram
from finetune_kit.facts._models import PRICE_DATE, default_n_epochs

if TYPE_CHECKING:
    from pathlib import Path


def chat(i: int, answer: str | None = None, *, words: int = 3) -> dict[str, Any]:
    text = " ".join(f"word{j}" for j in range(words))
    return {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"Question {i}: {text}"},
            {"role": "assistant", "content": answer if answer is not None else f"Answer {i}."},
        ]
    }


def write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


# --- construction and iteration ---------------------------------------------------------


def test_from_jsonl_iterates_lazily_and_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(5)])
    ds = Dataset.from_jsonl(path)
    assert ds.path == path
    assert len(ds) == 5
    assert [r["messages"][1]["content"][:10] for r in ds][:2] == ["Question 0", "Question 1"]
    assert ds.kind == "chat"
    assert repr(ds) == f"Dataset(path={str(path)!r})"


def test_from_jsonl_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.from_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="is a directory"):
        Dataset.from_jsonl(tmp_path)
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": []}\n\n[1]\n')
    ds = Dataset.from_jsonl(path)
    assert len(ds) == 2  # blank lines are not examples
    with pytest.raises(DatasetError, match="line 3: not a JSON object"):
        list(ds)


def test_from_pairs_and_labels() -> None:
    ds = Dataset.from_pairs(["a", "b"], ["x", "y"], system="Be brief.")
    assert next(iter(ds)) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "x"},
        ]
    }
    assert ds.kind == "chat"
    with pytest.raises(ValueError, match="pair up"):
        Dataset.from_pairs(["a"], [])
    with pytest.raises(ValueError, match="non-empty strings"):
        Dataset.from_labels(["a"], [""])
    labelled = Dataset.from_labels(["good", "bad", "fine", "awful"], ["pos", "neg", "pos", "neg"])
    assert labelled.is_classification
    assert labelled.labels == ["pos", "neg", "pos", "neg"]


def test_forced_kind() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        Dataset.from_records([], kind="sft")  # type: ignore[arg-type]
    assert Dataset.from_records([chat(1)], kind="reinforcement").kind == "reinforcement"


# --- bytes, hash, atomic write --------------------------------------------------------------


def test_to_jsonl_bytes_and_hash_in_memory() -> None:
    ds = Dataset.from_records([{"messages": [{"role": "user", "content": "café"}]}])
    data = ds.to_jsonl_bytes()
    assert data == '{"messages":[{"role":"user","content":"café"}]}\n'.encode()
    assert ds.content_hash() == hashlib.sha256(data).hexdigest()


def test_file_backed_bytes_are_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"messages": [] }\r\n{"a": 1}')
    ds = Dataset.from_jsonl(path)
    assert ds.to_jsonl_bytes() == path.read_bytes()
    assert ds.content_hash() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_to_jsonl_roundtrip_and_atomic(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(3)]
    target = tmp_path / "out.jsonl"
    assert Dataset.from_records(rows).to_jsonl(target) == target
    assert list(Dataset.from_jsonl(target)) == rows
    before = target.read_bytes()
    bad = Dataset.from_records([chat(1), {"x": object()}])
    with pytest.raises(DatasetError, match="record 2 cannot be written as JSON"):
        bad.to_jsonl(target)
    assert target.read_bytes() == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temp left over


def test_to_jsonl_onto_its_own_file(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(3)])
    before = path.read_bytes()
    Dataset.from_jsonl(path).to_jsonl(path)
    assert path.read_bytes() == before


# --- stats and cost ---------------------------------------------------------------------------


def test_distribution_percentiles() -> None:
    dist = Distribution.from_counts(Counter(range(1, 11)))  # 1..10
    assert (dist.min, dist.max, dist.mean) == (1, 10, 5.5)
    assert dist.p50 == pytest.approx(5.5)
    assert dist.p10 == pytest.approx(1.9)
    assert dist.p90 == pytest.approx(9.1)
    assert Distribution.from_counts({}).count == 0


def test_histogram_bins_have_one_round_width_and_cover_every_value() -> None:
    counts = Counter({3: 2, 47: 1, 120: 4, 121: 1, 998: 1})

    hist = Histogram.from_counts(counts, bins=20)

    widths = {b - a for a, b in zip(hist.edges, hist.edges[1:], strict=False)}
    assert widths == {50}  # the first round width giving at most 20 bins over 3..998
    assert (hist.edges[0], hist.edges[-1]) == (0, 1000)
    assert len(hist.counts) == len(hist.edges) - 1 == 20
    for value, n in counts.items():
        i = next(i for i, low in enumerate(hist.edges[:-1]) if low <= value < hist.edges[i + 1])
        assert hist.counts[i] >= n
    assert (hist.counts[0], hist.counts[2], hist.counts[19]) == (3, 5, 1)
    assert sum(hist.counts) == counts.total()
    assert Histogram.from_counts({}) == Histogram()
    assert Histogram.from_counts({7: 3}) == Histogram(edges=(7, 8), counts=(3,))


def test_stats_keep_a_histogram_of_tokens_per_example() -> None:
    ds = Dataset.from_records([chat(i, words=i * 5) for i in range(30)])

    stats = ds.stats("gpt-4o-mini")

    hist = stats.token_histogram
    assert sum(hist.counts) == stats.n_examples == 30
    assert hist.edges[0] <= stats.tokens_per_example.min < hist.edges[1]
    assert hist.edges[-2] <= stats.tokens_per_example.max < hist.edges[-1]
    assert len(hist.counts) > 5


def test_stats_counts_over_limit_and_caps_billable() -> None:
    long = chat(0, answer="hello " * 17_000)  # over gpt-3.5-turbo's 16,385
    ds = Dataset.from_records([long, *(chat(i) for i in range(1, 11))])
    stats = ds.stats(model="gpt-3.5-turbo")
    assert stats.n_over_limit == 1
    assert stats.training_context == 16_385
    longest = int(stats.tokens_per_example.max)
    assert longest > 16_385
    assert stats.billable_tokens == stats.total_tokens - longest + 16_385
    assert stats.messages_per_example.p50 == 3
    assert stats.label_counts is None


@pytest.mark.parametrize(
    ("n", "epochs"), [(1, 25), (10, 10), (30, 3), (34, 3), (8_000, 3), (10_000, 2), (30_000, 1)]
)
def test_default_epochs_rule(n: int, epochs: int) -> None:
    assert default_n_epochs(n) == epochs


def test_estimate_cost() -> None:
    ds = Dataset.from_records([chat(i) for i in range(20)])
    stats = ds.stats(model="gpt-4o-mini")
    cost = ds.estimate_cost(model="gpt-4o-mini")
    assert isinstance(cost, CostEstimate)
    assert cost.n_epochs == 5  # 20 x 3 < 100 -> 100 // 20
    assert cost.n_epochs_source == "default"
    assert cost.billable_tokens == stats.billable_tokens
    assert cost.trained_tokens == stats.billable_tokens * 5
    assert cost.price_per_mtok == 3.0
    assert cost.usd is not None
    assert cost.usd >= cost.trained_tokens * 3.0 / 1e6  # never an under-estimate
    assert cost.usd - cost.trained_tokens * 3.0 / 1e6 < 0.01
    assert cost.price_date == PRICE_DATE
    assert PRICE_DATE.isoformat() in str(cost)

    given = ds.estimate_cost(model="gpt-4o-mini", n_epochs=2, prices={"gpt-4o-mini": 1e6})
    assert (given.n_epochs, given.n_epochs_source, given.price_source) == (2, "given", "override")
    assert given.usd == given.trained_tokens
    with pytest.raises(ValueError, match="positive integer"):
        ds.estimate_cost(model="gpt-4o-mini", n_epochs=0)


def test_estimate_cost_reinforcement_and_unknown_price() -> None:
    rft = Dataset.from_records(
        [{"messages": [{"role": "user", "content": f"{i}?"}], "ref": i} for i in range(10)]
    )
    cost = rft.estimate_cost(model="o4-mini")
    assert cost.usd is None
    assert cost.note is not None
    assert "per hour" in cost.note
    chat_ds = Dataset.from_records([chat(i) for i in range(10)])
    with pytest.warns(match="Unknown model name"):
        unknown = chat_ds.estimate_cost(model="acme-model-7")
    assert unknown.usd is None
    assert unknown.price_source == "unknown"


def test_results_are_remembered_until_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(10)])
    ds = Dataset.from_jsonl(path)
    first = ds.validate()
    assert ds.validate() is first
    write(path, [chat(i) for i in range(12)])
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert ds.validate().n_examples == 12


# --- split ------------------------------------------------------------------------------------


def labelled(n_per_label: dict[str, int]) -> Dataset:
    rows = [
        chat(i * 100 + j, answer=label)
        for i, (label, n) in enumerate(n_per_label.items())
        for j in range(n)
    ]
    return Dataset.from_records(rows)


def test_split_is_deterministic_and_disjoint() -> None:
    ds = Dataset.from_records([chat(i, words=i % 5) for i in range(50)])
    train, test = ds.split(test_size=0.2, seed=7)
    assert (len(train), len(test)) == (40, 10)
    again = ds.split(test_size=0.2, seed=7)
    assert list(again[1]) == list(test)
    assert list(ds.split(test_size=0.2, seed=8)[1]) != list(test)
    as_text = {json.dumps(r) for r in train}
    assert not as_text & {json.dumps(r) for r in test}
    assert len(as_text | {json.dumps(r) for r in test}) == 50


def test_split_stratifies_classification_automatically() -> None:
    ds = labelled({"spam": 40, "ham": 16, "rare": 2, "single": 1})
    assert ds.is_classification
    train, test = ds.split(test_size=0.25, seed=0)
    train_labels, test_labels = Counter(train.labels or []), Counter(test.labels or [])
    assert test_labels == {"spam": 10, "ham": 4, "rare": 1}
    assert train_labels == {"spam": 30, "ham": 12, "rare": 1, "single": 1}


def test_split_stratify_flags() -> None:
    free_text = Dataset.from_records([chat(i) for i in range(10)])
    with pytest.raises(ValueError, match="classification data"):
        free_text.split(stratify=True)
    ds = labelled({"a": 10, "b": 10})
    train, test = ds.split(test_size=5, stratify=False, seed=3)
    assert (len(train), len(test)) == (15, 5)


def test_split_keeps_duplicates_together() -> None:
    rows = [chat(i % 5) for i in range(20)]  # each example four times
    train, test = Dataset.from_records(rows).split(test_size=0.4, seed=1)
    assert not {json.dumps(r) for r in train} & {json.dumps(r) for r in test}
    assert len(train) + len(test) == 20


@pytest.mark.parametrize("bad", [0, 1.0, 0.0, 10, -1, True])
def test_split_rejects_bad_sizes(bad: float) -> None:
    with pytest.raises(ValueError, match="test_size"):
        Dataset.from_records([chat(i) for i in range(10)]).split(test_size=bad)


def test_split_file_backed(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(i) for i in range(10)])
    train, test = Dataset.from_jsonl(path).split(test_size=0.3)
    # A file splits into two files (streamed), not into records in memory.
    assert (len(train), len(test)) == (7, 3)
    assert train.path is not None
    assert test.path is not None


# --- streaming and workers --------------------------------------------------------------------


def test_parallel_check_equals_serial(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[Any] = [chat(i, words=i % 40) for i in range(3_000)]
    rows[10] = {"messages": [{"role": "user", "content": "no answer"}]}
    rows[20] = {"messages": [{"role": "assistant", "content": "no question"}]}
    rows[2_500] = rows[7]
    path = write(tmp_path / "big.jsonl", rows)
    with path.open("ab") as f:
        f.write(b"not json\n")
    serial = Dataset.from_jsonl(path)
    parallel = Dataset.from_jsonl(path)
    # Small chunks so that the work really is spread over many tasks.
    monkeypatch.setattr("finetune_kit.datasets._source.CHUNK_BYTES", 16 * 1024)
    with caplog.at_level(logging.DEBUG, logger="finetune_kit"):
        p_report, p_stats = parallel.validate(workers=2), parallel.stats(workers=2)
    assert "with 2 worker processes" in caplog.text
    assert "failed" not in caplog.text
    s_report, s_stats = serial.validate(workers=1), serial.stats(workers=1)
    assert p_report == s_report
    assert p_stats == s_stats
    # The workers' histograms merge into the serial one (compared above), which is not empty.
    assert sum(p_stats.token_histogram.counts) == p_stats.n_examples
    assert [(p.line, p.code) for p in s_report.problems] == [
        (None, "missing_system"),
        (None, "missing_user"),
        (11, "missing_assistant"),
        (2501, "duplicate_example"),
        (3001, "invalid_json"),
    ]


def _peak_validate(path: Path) -> int:
    tracemalloc.start()
    try:
        Dataset.from_jsonl(path).validate(workers=1)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_file_backed_validation_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks far smaller than the files, so that both files are streamed in many chunks.
    monkeypatch.setattr("finetune_kit.datasets._source.CHUNK_BYTES", 32 * 1024)
    small = write(tmp_path / "small.jsonl", [chat(i, words=300) for i in range(200)])
    large = write(tmp_path / "large.jsonl", [chat(i, words=300) for i in range(1_000)])
    growth_file = large.stat().st_size - small.stat().st_size
    # Outside tracemalloc: load the encoding, and fill the token counter's cache with the short
    # texts of both files (the large one holds the small one's examples). That cache is shared
    # across calls and bounded (a few thousand short texts), so it is not what one validation
    # keeps, but filled during the large file's measurement alone it made most of the growth.
    Dataset.from_jsonl(large).validate(workers=1)
    # The file grows by ~2 MB; what validation keeps per example is a few dozen bytes.
    bound = growth_file / 20
    # tracemalloc also counts what other threads allocate meanwhile (under pytest-xdist, the
    # worker's messaging thread), which only ever adds to a peak. So each file's peak is the
    # smallest of up to three measurements, and another is taken only while over the bound.
    peak_small = peak_large = math.inf
    for _ in range(3):
        peak_small = min(peak_small, _peak_validate(small))
        peak_large = min(peak_large, _peak_validate(large))
        if peak_large - peak_small < bound:
            break
    assert peak_large - peak_small < bound, (peak_large - peak_small, growth_file)


def test_bad_workers_value(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [chat(1)])
    with pytest.raises(ValueError, match="workers"):
        Dataset.from_jsonl(path).validate(workers=0)


# --- upload delegation ------------------------------------------------------------------------


def test_upload_delegates(monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune_kit.datasets._upload as upload_module

    calls: list[tuple[object, dict[str, object]]] = []

    def fake(ds: object, **options: object) -> str:
        calls.append((ds, options))
        return "file-abc"

    async def afake(ds: object, **options: object) -> str:
        return fake(ds, **options)

    monkeypatch.setattr(upload_module, "upload_dataset", fake)
    monkeypatch.setattr(upload_module, "aupload_dataset", afake)
    ds = Dataset.from_records([chat(1)])
    assert ds.upload(validate=False) == "file-abc"
    assert calls == [(ds, {"client": None, "validate": False, "retry": None})]


async def test_aupload_delegates(monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune_kit.datasets._upload as upload_module

    async def afake(ds: object, **options: object) -> str:
        assert isinstance(ds, Dataset)
        return f"file-{options['validate']}"

    monkeypatch.setattr(upload_module, "aupload_dataset", afake)
    assert await Dataset.from_records([chat(1)]).aupload() == "file-True"


def test_validation_role_lifts_only_the_minimum_count() -> None:
    records: list[dict[str, object]] = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(4)
    ]
    records.append({"messages": [{"role": "user", "content": "no answer"}]})
    ds = Dataset.from_records(records)
    as_training = ds.validate()
    as_validation = ds.validate(role="validation")
    assert "too_few_examples" in {p.code for p in as_training.errors}
    assert "too_few_examples" not in {p.code for p in as_validation.problems}
    assert "too_few_examples" not in as_validation.counts
    # Every other rule still holds for validation data.
    assert [p.code for p in as_validation.errors] == ["missing_assistant"]
    assert as_validation.errors[0].line == 5
