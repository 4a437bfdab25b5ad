"""The async twin of ``fine_tune_and_classify.py``: the same flow with AsyncJob and the task's
async methods."""

from __future__ import annotations

import asyncio

from finetune_kit import AsyncJob, ClassificationTask, compare
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
    task = ClassificationTask(
        ["negative", "neutral", "positive"], instructions="Classify the review's sentiment."
    )
    train, held_out = task.dataset(TEXTS, LABELS).split(test_size=0.25, seed=0)
    # Load the token encoding now, off the event loop, rather than in the first request.
    await asyncio.to_thread(task.warm_up, model="gpt-4o-mini")

    with LocalServer(speed=10) as server:
        async with server.async_client() as client:
            job = await AsyncJob.create(train, model="gpt-4o-mini", client=client)
            tuned = await job.wait(poll_interval=0.5)
            base = await task.aevaluate(held_out, model="gpt-4o-mini", client=client)
            mine = await task.aevaluate(held_out, model=tuned.name, client=client)
            print(compare(base, mine))
            results = await task.aclassify_many(
                ["My new charger stopped working", "The kettle is excellent"],
                model=tuned.name,
                client=client,
                concurrency=4,
            )
            for result in results:
                print(result)


if __name__ == "__main__":
    asyncio.run(main())
