"""A trainer of your own behind the local backend's ``Trainer`` protocol.

The toy below learns which answer each word votes for (smoothed counts); a real one would
fine-tune an LLM on a GPU. What matters is the shape: ``train`` takes the job's examples,
validation examples, hyperparameters, seed and an ``on_step`` callback, reports one
``StepMetrics`` per step and returns a ``TrainingRun`` (steps, epoch ends, one snapshot per
epoch, the final model); ``load_model`` reads back what the model's ``to_json`` wrote.

Usage: python examples/custom_trainer.py
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetune_kit.local import (
    AnswerModel,
    Hyperparameters,
    StepMetrics,
    Trainer,
    TrainingExample,
    TrainingRun,
    TrainOptions,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from typing_extensions import Unpack


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@dataclass
class WordVoteModel:
    """Each known word votes for the answers it was seen with (add-one smoothing)."""

    answers: list[str]
    votes: dict[str, list[float]] = field(default_factory=dict)

    def probabilities(self, text: str) -> list[float]:
        """A distribution over :attr:`answers` for a conversation's text."""
        scores = [0.0] * len(self.answers)
        for word in _words(text):
            counts = self.votes.get(word)
            if counts is not None:
                total = sum(counts)
                scores = [s + math.log(c / total) for s, c in zip(scores, counts, strict=True)]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        return [e / sum(exps) for e in exps]

    def to_json(self) -> dict[str, Any]:
        """What :meth:`WordVoteTrainer.load_model` reads back."""
        return {"answers": list(self.answers), "votes": self.votes}

    def copy(self) -> WordVoteModel:
        return WordVoteModel(list(self.answers), {w: list(c) for w, c in self.votes.items()})


@dataclass(frozen=True)
class WordVoteTrainer:
    """A toy :class:`Trainer`: one pass of counting per epoch, minibatch by minibatch."""

    def train(
        self, examples: Sequence[TrainingExample], **options: Unpack[TrainOptions]
    ) -> TrainingRun[WordVoteModel]:
        validation, on_step = options["validation"], options.get("on_step")
        answers = sorted({ex.answer for ex in examples})
        model = WordVoteModel(answers)
        rng = random.Random(options["seed"])  # everything the run uses is its own: thread-safe
        order = list(examples)
        steps: list[StepMetrics] = []
        epoch_ends: list[int] = []
        snapshots: dict[int, WordVoteModel] = {}
        size = options["hyperparameters"].batch_size
        for _ in range(options["hyperparameters"].n_epochs):
            rng.shuffle(order)
            for start in range(0, len(order), size):
                batch = order[start : start + size]
                loss, accuracy = _measure(model, batch)  # before the update, as the service
                for ex in batch:
                    for word in _words(ex.context):
                        model.votes.setdefault(word, [1.0] * len(answers))
                        model.votes[word][answers.index(ex.answer)] += 1.0
                metrics = StepMetrics(len(steps) + 1, loss, accuracy)
                if validation:
                    valid_loss, valid_accuracy = _measure(model, validation)
                    metrics = StepMetrics(metrics.step, loss, accuracy, valid_loss, valid_accuracy)
                steps.append(metrics)
                if on_step is not None:
                    on_step(metrics)
            epoch_ends.append(len(steps))
            snapshots[len(steps)] = model.copy()
        return TrainingRun(model.copy(), steps, epoch_ends, snapshots)

    def load_model(self, data: dict[str, Any]) -> WordVoteModel:
        return WordVoteModel(list(data["answers"]), dict(data["votes"]))


def _measure(model: WordVoteModel, batch: Sequence[TrainingExample]) -> tuple[float, float]:
    loss = right = 0.0
    for ex in batch:
        probs = model.probabilities(ex.context)
        mine = probs[model.answers.index(ex.answer)] if ex.answer in model.answers else 0.0
        loss += -math.log(max(mine, 1e-12))
        right += mine == max(probs)
    return loss / len(batch), right / len(batch)


def fit(trainer: Trainer[AnswerModel], examples: list[TrainingExample]) -> AnswerModel:
    """What the local backend does with any trainer: train, save, load back."""
    run = trainer.train(
        examples,
        validation=examples[:2],
        hyperparameters=Hyperparameters(n_epochs=2, batch_size=2),
        seed=0,
        on_step=lambda m: print(f"step {m.step}: train_loss {m.train_loss:.3f}"),
    )
    return trainer.load_model(run.model.to_json())


def main() -> None:
    examples = [
        TrainingExample("Classify the topic.\nwrite a python function", "coding"),
        TrainingExample("Classify the topic.\nfix this java bug", "coding"),
        TrainingExample("Classify the topic.\nwho painted the mona lisa", "trivia"),
        TrainingExample("Classify the topic.\nwhat is the capital of peru", "trivia"),
    ]
    model = fit(WordVoteTrainer(), examples)
    probs = model.probabilities("Classify the topic.\nwrite a rust function")
    print(dict(zip(model.answers, (round(p, 2) for p in probs), strict=True)))


if __name__ == "__main__":
    main()
