"""The async twin of ``fine_tune_and_classify.py``: the same flow with AsyncJob and the task's
async methods."""

from __future__ import annotations

import asyncio

from reviews import LABELS, TEXTS  # the toy data, next to this file

from finetune_kit import AsyncJob, ClassificationTask, compare
from finetune_kit.local import LocalServer


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
