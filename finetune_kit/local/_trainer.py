"""The local backend's trainer: the :class:`Trainer` protocol, the built-in one, and helpers.

A fine-tuning job is turned into :class:`TrainingExample` values (the conversation so far and
the answer that follows) and handed to a :class:`Trainer`, which returns a
:class:`TrainingRun`. The built-in :class:`LinearTrainer` learns a :class:`LinearModel`
(Naive Bayes-initialised softmax regression over character and word n-grams, in pure Python,
see :mod:`._trainer_linear`) that predicts the answer among the distinct answers it saw in
training (for classification data: the labels). The server trains with whichever trainer
it was given (``LocalServer(trainer=...)``, default :class:`LinearTrainer`); :func:`train` is
a keyword shortcut for the built-in one.

Base (untuned) models do not use a trainer: see :func:`base_scores`.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING

from ._trainer_features import content_text, context_text, features, ngram_features, words
from ._trainer_linear import LinearTrainer
from ._trainer_model import LinearModel
from ._trainer_types import Hyperparameters, StepMetrics, TrainingExample, TrainingRun

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "MAX_ANSWERS",
    "MAX_EXAMPLES",
    "Hyperparameters",
    "LinearModel",
    "LinearTrainer",
    "StepMetrics",
    "TrainingExample",
    "TrainingRun",
    "base_scores",
    "content_text",
    "context_text",
    "features",
    "limit_examples",
    "ngram_features",
    "train",
    "words",
]

#: At most this many distinct answers are learned (the most frequent): the model's size and
#: training time grow with the number of answers, and free-text replies would explode both.
MAX_ANSWERS = 100
#: At most this many examples are trained on (a seeded sample): the built-in trainer is
#: pure Python, and a job should train in seconds.
MAX_EXAMPLES = 5000


def train(
    examples: list[TrainingExample],
    *,
    validation: Sequence[TrainingExample] = (),
    n_epochs: int,
    batch_size: int,
    learning_rate_multiplier: float = 1.0,
    seed: int = 0,
    on_step: Callable[[StepMetrics], None] | None = None,
    trainer: LinearTrainer | None = None,
) -> TrainingRun:
    """Train the built-in :class:`LinearModel`; deterministic for a given ``seed``.

    Args:
        examples: What to learn from (at least one).
        validation: Held-out examples: each step reports the loss and accuracy on one
            rotating validation minibatch, each epoch's last step on all of them.
        n_epochs: Passes over ``examples``.
        batch_size: Examples per step.
        learning_rate_multiplier: Scales the base learning rate.
        seed: Shuffling seed.
        on_step: Called with each step's metrics as soon as they are known.
        trainer: The built-in trainer's settings (default: ``LinearTrainer()``).
    """
    return (trainer or LinearTrainer()).train(
        examples,
        validation=validation,
        hyperparameters=Hyperparameters(n_epochs, batch_size, learning_rate_multiplier),
        seed=seed,
        on_step=on_step,
    )


def limit_examples(
    examples: list[TrainingExample],
    *,
    seed: int,
    max_answers: int = MAX_ANSWERS,
    max_examples: int = MAX_EXAMPLES,
) -> tuple[list[TrainingExample], str | None]:
    """Keep the examples of the ``max_answers`` most frequent answers, at most ``max_examples``.

    Returns the kept examples (in their original order) and a note saying what was left out,
    or None when nothing was.
    """
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.answer] = counts.get(ex.answer, 0) + 1
    notes: list[str] = []
    kept = examples
    if len(counts) > max_answers:
        top = set(sorted(counts, key=lambda a: (-counts[a], a))[:max_answers])
        kept = [ex for ex in kept if ex.answer in top]
        notes.append(
            f"the {max_answers} most frequent of {len(counts)} distinct answers are learned; "
            f"{len(examples) - len(kept)} examples with rarer answers were skipped"
        )
    if len(kept) > max_examples:
        chosen = sorted(random.Random(seed).sample(range(len(kept)), max_examples))
        notes.append(f"{max_examples} of {len(kept)} examples were sampled for training")
        kept = [kept[i] for i in chosen]
    if not notes:
        return kept, None
    return kept, "The built-in model trains at a small scale: " + "; ".join(notes) + "."


def _stable_unit(*parts: str) -> float:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def base_scores(question: str, candidates: list[str]) -> list[float]:
    """The untuned base model's logits over ``candidates``: a deliberately weak baseline.

    Each candidate scores twice the number of words it shares with the question, plus a
    stable pseudo-random term in [0, 1) from hashing the question and the candidate. So the
    base answers deterministically, sometimes right by word overlap, mostly by chance.
    """
    qwords = set(words(question))
    return [2.0 * len(qwords & set(words(c))) + _stable_unit(question, c) for c in candidates]
