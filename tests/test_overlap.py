"""Training and validation data must not share examples: found, named, and warned about."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from finetune_kit import Dataset, FinetuneKitWarning, Job
from finetune_kit.datasets._dataset import shared_examples

if TYPE_CHECKING:
    from pathlib import Path

    from finetune_kit.local import LocalServer
    from tests.conftest import RecordingClock


def _chat(question: str, answer: str) -> dict[str, object]:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def test_shared_examples_in_memory_are_named_by_position() -> None:
    train = Dataset.from_records([_chat("a", "x"), _chat("b", "y"), _chat("c", "z")])
    valid = Dataset.from_records([_chat("q", "x"), _chat("c", "z"), _chat("a", "x")])
    assert shared_examples(train, valid) == [(2, 3), (3, 1)]


def test_shared_examples_ignore_key_order() -> None:
    # The same example written with its keys in another order is the same example.
    train = Dataset.from_records([{"messages": [{"content": "a", "role": "user"}]}])
    valid = Dataset.from_records([{"messages": [{"role": "user", "content": "a"}]}])
    assert shared_examples(train, valid) == [(1, 1)]


def test_shared_examples_in_files_are_named_by_line(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    valid = tmp_path / "valid.jsonl"
    Dataset.from_records([_chat("a", "x"), _chat("b", "y")]).to_jsonl(train)
    # A blank line and a broken line count as lines but are not compared.
    line = Dataset.from_records([_chat("b", "y")]).to_jsonl_bytes()
    valid.write_bytes(b"\n{broken\n" + line)
    assert shared_examples(Dataset.from_jsonl(train), Dataset.from_jsonl(valid)) == [(3, 2)]


def test_disjoint_sets_share_nothing() -> None:
    data = Dataset.from_labels([f"text {i}" for i in range(20)], ["a", "b"] * 10)
    train, valid = data.split(test_size=0.25, seed=1)
    assert shared_examples(train, valid) == []


def _overlap_warnings(
    server: LocalServer, clock: RecordingClock, train: Dataset, valid: Dataset
) -> list[str]:
    """The overlap warnings ``Job.create`` gives for ``train`` and ``valid``."""
    with warnings.catch_warnings(record=True) as caught:  # whatever the date says
        warnings.simplefilter("always")
        Job.create(
            train,
            model="gpt-4o-mini",
            validation=valid,
            client=server.client(),
            retry=clock.policy(),
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, FinetuneKitWarning)]
    return [m for m in messages if "also appear in the training data" in m]


def test_job_create_warns_when_validation_repeats_training(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    data = Dataset.from_labels([f"text {i}" for i in range(20)], ["a", "b"] * 10)
    overlapping = Dataset.from_records(list(data)[:5])
    assert _overlap_warnings(clocked_server, clock, data, overlapping) == [
        "5 of 5 validation examples also appear in the training data (validation 1 = "
        "training 1, validation 2 = training 2, validation 3 = training 3 and 2 more): "
        "validation loss and accuracy will look better than they are. Dataset.split() makes "
        "disjoint sets."
    ]


def test_job_create_is_quiet_about_split_data(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    train, valid = Dataset.from_labels([f"text {i}" for i in range(40)], ["a", "b"] * 20).split()
    assert _overlap_warnings(clocked_server, clock, train, valid) == []
