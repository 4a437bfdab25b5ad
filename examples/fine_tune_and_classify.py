"""Fine-tune on labelled texts, then classify with the tuned model — on the local backend.

One ``ClassificationTask`` writes the training data and every request, so the tuned model is
asked exactly what it was trained on (and the base model gets the same prompt).

Swap ``server.client()`` for ``openai.OpenAI()`` (or ``openai.AzureOpenAI(...)``) to run the
same code against a real endpoint.
"""

from __future__ import annotations

from reviews import LABELS, TEXTS  # the toy data, next to this file

from finetune_kit import ClassificationTask, Job, compare
from finetune_kit.local import LocalServer


def main() -> None:
    task = ClassificationTask(
        ["negative", "neutral", "positive"], instructions="Classify the review's sentiment."
    )
    dataset = task.dataset(TEXTS, LABELS)
    dataset.validate(model="gpt-4o-mini").raise_for_errors()
    train, held_out = dataset.split(test_size=0.25, seed=0)

    with LocalServer(speed=10) as server, server.client() as client:
        job = Job.create(train, model="gpt-4o-mini", validation=held_out, client=client)
        tuned = job.wait(poll_interval=0.5)
        print(job.metrics_summary().message)

        base = task.evaluate(held_out, model="gpt-4o-mini", client=client)
        mine = task.evaluate(held_out, model=tuned.name, client=client)
        print(compare(base, mine))

        result = task.classify("My new charger stopped working", model=tuned.name, client=client)
        print(result.label, result.probabilities)


if __name__ == "__main__":
    main()
