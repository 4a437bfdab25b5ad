"""Fine-tune on labelled texts, then classify with the tuned model — on the local backend.

Swap ``server.client()`` for ``openai.OpenAI()`` (or ``openai.AzureOpenAI(...)``) to run the
same code against a real endpoint.
"""

from __future__ import annotations

from finetune_kit import Dataset, Job, TunedModel, compare
from finetune_kit.local import LocalServer

PRODUCTS = ["phone", "laptop", "kettle", "headphones", "charger", "camera"]
PHRASES = {
    "negative": ["broke after a week", "stopped working", "is terrible", "was a waste of money"],
    "neutral": ["arrived on Tuesday", "is as described", "is average", "came in a box"],
    "positive": ["works great", "is excellent", "is worth every penny", "made me happy"],
}
TEXTS = [f"The {p} {phrase}" for label in PHRASES for p in PRODUCTS for phrase in PHRASES[label]]
LABELS = [label for label in PHRASES for _ in PRODUCTS for _ in PHRASES[label]]


def main() -> None:
    dataset = Dataset.from_labels(TEXTS, LABELS, system="Classify the review's sentiment.")
    dataset.validate(model="gpt-4o-mini").raise_for_errors()
    train, held_out = dataset.split(test_size=0.25, seed=0)

    with LocalServer(speed=10) as server, server.client() as client:
        job = Job.create(train, model="gpt-4o-mini", validation=held_out, client=client)
        tuned = job.wait(poll_interval=0.5)
        print(job.metrics_summary().message)

        labels = ["negative", "neutral", "positive"]
        base = TunedModel("gpt-4o-mini", client=client).evaluate(held_out, labels=labels)
        print(compare(base, tuned.evaluate(held_out, labels=labels)))

        result = tuned.classify("My new charger stopped working", labels=labels)
        print(result.label, result.probabilities)


if __name__ == "__main__":
    main()
