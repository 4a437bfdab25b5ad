"""The built-in model: multinomial logistic regression over word n-grams, in pure Python.

A "model" predicts the assistant's answer among the distinct answers it saw in training
(for classification data: the labels) from the words of the conversation so far. Features are
lower-cased word unigrams and bigrams, binary, scaled by ``1/sqrt(count)`` so long prompts do
not dominate. Training is plain minibatch SGD on the cross-entropy; every step's loss is the
real loss of that minibatch before the update, which is what the job reports as
``train_loss``. At this size (hundreds to a few thousand examples) it trains in well under a
second, needs no numpy, and clearly beats the untrained base on held-out data.

Base (untuned) models do not use this class: see :func:`base_scores`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MAX_ANSWERS",
    "MAX_EXAMPLES",
    "LinearModel",
    "StepMetrics",
    "TrainingExample",
    "TrainingRun",
    "base_scores",
    "content_text",
    "context_text",
    "features",
    "limit_examples",
    "train",
    "words",
]

_WORD = re.compile(r"\w+", re.UNICODE)

#: At most this many distinct answers are learned (the most frequent): the model's size and
#: training time grow with the number of answers, and free-text replies would explode both.
MAX_ANSWERS = 100
#: At most this many examples are trained on (a seeded sample): training is pure Python and
#: holds the server's lock.
MAX_EXAMPLES = 5000


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return _WORD.findall(text.lower())


def features(text: str) -> dict[str, float]:
    """Binary unigram + bigram features of ``text``, scaled to unit norm."""
    toks = words(text)
    names = set(toks)
    names.update(f"{a} {b}" for a, b in itertools.pairwise(toks))
    names.add("<bias>")
    scale = 1.0 / math.sqrt(len(names))
    return dict.fromkeys(names, scale)


def content_text(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def context_text(messages: list[Any]) -> str:
    """The text a model reads: every message's content, in order (roles are not features)."""
    return "\n".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))


@dataclass(frozen=True)
class TrainingExample:
    """One thing to learn: the conversation so far and the answer that follows it."""

    context: str
    answer: str


@dataclass
class LinearModel:
    """Softmax regression from n-gram features to one of ``answers``."""

    answers: list[str]
    weights: dict[str, list[float]] = field(default_factory=dict)

    def logits(self, text: str) -> list[float]:
        """Unnormalised scores of each answer for the conversation ``text``."""
        out = [0.0] * len(self.answers)
        for name, value in features(text).items():
            row = self.weights.get(name)
            if row is not None:
                for k, w in enumerate(row):
                    out[k] += w * value
        return out

    def probabilities(self, text: str) -> list[float]:
        """The model's distribution over ``answers``."""
        return _softmax(self.logits(text))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable copy (full precision: a reloaded model answers identically)."""
        return {"answers": list(self.answers), "weights": self.weights}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        """Inverse of :meth:`to_json`."""
        return cls(answers=list(data["answers"]), weights=dict(data["weights"]))

    def copy(self) -> LinearModel:
        """An independent copy (used for per-epoch checkpoints)."""
        return LinearModel(list(self.answers), {k: list(v) for k, v in self.weights.items()})


def _softmax(logits: list[float]) -> list[float]:
    if not logits:
        return []
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


@dataclass(frozen=True)
class StepMetrics:
    """What one training step measured (the numbers the job's metrics events carry)."""

    step: int
    train_loss: float
    train_mean_token_accuracy: float
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The metrics as a dict, without the ``None`` fields."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class TrainingRun:
    """A finished training run: per-step metrics, per-epoch snapshots and the final model."""

    model: LinearModel
    steps: list[StepMetrics]
    epoch_ends: list[int]
    """The step number at which each epoch ended."""
    snapshots: dict[int, LinearModel]
    """Model after each epoch, keyed by the step number."""


_LOSS_CAP = 20.0


def _loss_and_delta(
    model: LinearModel, feats: dict[str, float], target: int
) -> tuple[float, bool, list[float]]:
    """Cross-entropy, correctness, and d(loss)/d(logits) for one example."""
    probs = _softmax(_logits_from(model, feats))
    loss = min(_LOSS_CAP, -math.log(max(probs[target], 1e-12)))
    correct = max(range(len(probs)), key=probs.__getitem__) == target
    delta = list(probs)
    delta[target] -= 1.0
    return loss, correct, delta


def _logits_from(model: LinearModel, feats: dict[str, float]) -> list[float]:
    out = [0.0] * len(model.answers)
    for name, value in feats.items():
        row = model.weights.get(name)
        if row is not None:
            for k, w in enumerate(row):
                out[k] += w * value
    return out


def _evaluate(model: LinearModel, examples: list[TrainingExample]) -> tuple[float, float]:
    index = {a: i for i, a in enumerate(model.answers)}
    loss = 0.0
    correct = 0
    for ex in examples:
        probs = model.probabilities(ex.context)
        target = index.get(ex.answer)
        if target is None:
            loss += _LOSS_CAP
            continue
        loss += min(_LOSS_CAP, -math.log(max(probs[target], 1e-12)))
        correct += max(range(len(probs)), key=probs.__getitem__) == target
    n = max(1, len(examples))
    return loss / n, correct / n


def train(
    examples: list[TrainingExample],
    *,
    validation: Sequence[TrainingExample] = (),
    n_epochs: int,
    batch_size: int,
    learning_rate_multiplier: float = 1.0,
    seed: int = 0,
) -> TrainingRun:
    """Train a :class:`LinearModel` by minibatch SGD; deterministic for a given ``seed``.

    Args:
        examples: What to learn from (at least one).
        validation: Held-out examples: each step reports the loss on one rotating validation
            minibatch, each epoch end the loss on all of them.
        n_epochs: Passes over ``examples``.
        batch_size: Examples per step.
        learning_rate_multiplier: Scales the base learning rate (1.0).
        seed: Shuffling seed.
    """
    answers = sorted({ex.answer for ex in examples})
    index = {a: i for i, a in enumerate(answers)}
    model = LinearModel(answers)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    # Features do not change between epochs: extract them once.
    cached = [(features(ex.context), index[ex.answer]) for ex in examples]
    valid = list(validation)
    steps: list[StepMetrics] = []
    epoch_ends: list[int] = []
    snapshots: dict[int, LinearModel] = {}
    lr = 2.0 * learning_rate_multiplier
    step = 0
    for _epoch in range(n_epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [cached[i] for i in order[start : start + batch_size]]
            step += 1
            grads: dict[str, list[float]] = {}
            loss_sum = 0.0
            correct = 0
            for feats, target in batch:
                loss, ok, delta = _loss_and_delta(model, feats, target)
                loss_sum += loss
                correct += ok
                for name, value in feats.items():
                    g = grads.setdefault(name, [0.0] * len(answers))
                    for k, d in enumerate(delta):
                        g[k] += d * value
            rate = lr / len(batch)
            for name, g in grads.items():
                row = model.weights.setdefault(name, [0.0] * len(answers))
                for k, gk in enumerate(g):
                    row[k] -= rate * gk
            valid_loss = valid_acc = None
            if valid:
                vb = [valid[(step * batch_size + j) % len(valid)] for j in range(batch_size)]
                valid_loss, valid_acc = _evaluate(model, vb)
            steps.append(
                StepMetrics(
                    step=step,
                    train_loss=loss_sum / len(batch),
                    train_mean_token_accuracy=correct / len(batch),
                    valid_loss=valid_loss,
                    valid_mean_token_accuracy=valid_acc,
                )
            )
        if valid:
            full_loss, full_acc = _evaluate(model, valid)
            last = steps[-1]
            steps[-1] = StepMetrics(
                step=last.step,
                train_loss=last.train_loss,
                train_mean_token_accuracy=last.train_mean_token_accuracy,
                valid_loss=last.valid_loss,
                valid_mean_token_accuracy=last.valid_mean_token_accuracy,
                full_valid_loss=full_loss,
                full_valid_mean_token_accuracy=full_acc,
            )
        epoch_ends.append(step)
        snapshots[step] = model.copy()
    return TrainingRun(model=model, steps=steps, epoch_ends=epoch_ends, snapshots=snapshots)


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
