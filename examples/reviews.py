"""The toy data the ``fine_tune_and_classify`` examples train on: short product reviews,
each labelled negative, neutral or positive."""

from __future__ import annotations

PRODUCTS = ["phone", "laptop", "kettle", "headphones", "charger", "camera"]
PHRASES = {
    "negative": ["broke after a week", "stopped working", "is terrible", "was a waste of money"],
    "neutral": ["arrived on Tuesday", "is as described", "is average", "came in a box"],
    "positive": ["works great", "is excellent", "is worth every penny", "made me happy"],
}
TEXTS = [f"The {p} {phrase}" for label in PHRASES for p in PRODUCTS for phrase in PHRASES[label]]
LABELS = [label for label in PHRASES for _ in PRODUCTS for _ in PHRASES[label]]
