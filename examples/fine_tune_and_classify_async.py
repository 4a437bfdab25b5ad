"""The async twin of ``fine_tune_and_classify.py``: same flow with AsyncJob and aclassify."""

from __future__ import annotations

import asyncio

from finetune_kit import AsyncJob, Dataset, aclassify_many
from finetune_kit.local import LocalServer

PRODUCTS = ["phone", "laptop", "kettle", "headphones", "charger", "camera"]
PHRASES = {
    "negative": ["broke after a week", "stopped working", "is terrible", "was a waste of money"],
    "neutral": ["arrived on Tuesday", "is as described", "is average", "came in a box"],
    "positive": ["works great", "is excellent", "is worth every penny", "made me happy"],
}
TEXTS = [f"The {p} {phrase}" for label in PHRASES for p in PRODUCTS for phrase in PHRASES[label]]
LABELS = [label for label in PHRASES for _ in PRODUCTS for _ in PHRASES[label]]


async def main() -> None:
    dataset = Dataset.from_labels(TEXTS, LABELS, system="Classify the review's sentiment.")
    train, held_out = dataset.split(test_size=0.25, seed=0)

    with LocalServer(speed=10) as server:
        async with server.async_client() as client:
            job = await AsyncJob.create(train, model="gpt-4o-mini", client=client)
            tuned = await job.wait(poll_interval=0.5)
            results = await aclassify_many(
                ["My new charger stopped working", "The kettle is excellent"],
                labels=["negative", "neutral", "positive"],
                model=tuned.name,
                client=client,
                concurrency=4,
            )
            for result in results:
                print(result)
            del held_out


if __name__ == "__main__":
    asyncio.run(main())
