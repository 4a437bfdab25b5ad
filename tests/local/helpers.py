"""Builders shared by the local backend's tests."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai
    from openai.types import FilePurpose

LABELS = ("ai", "coding", "emotion", "psychology", "trivia")
SYSTEM = "Classify the message's topic. Answer with one of: " + ", ".join(LABELS)


def demo_rows() -> list[tuple[str, str]]:
    """The bundled demo dataset as (text, label) rows."""
    ref = resources.files("finetune_kit") / "data" / "demo" / "chatbot_topics.csv"
    text = ref.read_text(encoding="utf-8")
    return [(row["text"], row["label"]) for row in csv.DictReader(io.StringIO(text))]


def stratified_split(
    rows: list[tuple[str, str]], *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split ``rows`` keeping each label's share in both parts."""
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n = max(1, round(len(group) * test_fraction))
        test += group[:n]
        train += group[n:]
    return train, test


def chat_line(text: str, label: str, *, system: str = SYSTEM) -> dict[str, Any]:
    """One supervised training example."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
            {"role": "assistant", "content": label},
        ]
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """JSON Lines bytes."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def small_training_file(n: int = 30) -> bytes:
    """A small, valid classification training file (the first ``n`` per-label-rotated rows)."""
    rows = demo_rows()
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    picked: list[tuple[str, str]] = []
    i = 0
    while len(picked) < n:
        for label in LABELS:
            if i < len(by_label[label]) and len(picked) < n:
                picked.append(by_label[label][i])
        i += 1
    return jsonl([chat_line(t, label) for t, label in picked])


def upload(client: openai.OpenAI, data: bytes, *, purpose: FilePurpose = "fine-tune") -> str:
    """Upload ``data`` and return the file id."""
    return client.files.create(file=("train.jsonl", data), purpose=purpose).id
