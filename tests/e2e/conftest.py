"""What the end-to-end flows share: a quick, stratified slice of the demo data."""

from __future__ import annotations

import pytest

from finetune_kit import Dataset
from finetune_kit.cli._demo_flow import load_demo_data


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset, list[str]]:
    """(training, held-out, labels): three of the demo's topics, split 75/25 with seed 0."""
    texts, labels = load_demo_data()
    # A smaller, still stratified slice of the demo data keeps each flow quick.
    keep = [i for i, label in enumerate(labels) if label in {"coding", "trivia", "emotion"}]
    ds = Dataset.from_labels([texts[i] for i in keep], [labels[i] for i in keep])
    train, held_out = ds.split(test_size=0.25, seed=0)
    return train, held_out, sorted({labels[i] for i in keep})
