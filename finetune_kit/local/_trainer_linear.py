"""The built-in trainer: Naive Bayes-initialised softmax regression over n-grams, pure Python.

How it learns (each choice measured on a 15-language identification set and on the demo's
topic set; ``benchmarks/local_trainer.py`` repeats the measurement):

1. **Features**: character 1-4-grams and word 1-2-grams of the conversation text
   (:func:`~._trainer_features.ngram_features`). A feature present in *every* training
   example (the shared system prompt) says nothing and is dropped; of the rest the
   ``max_features`` most frequent are kept (ties by name), which bounds the model's size.
2. **Initialisation**: multinomial Naive Bayes, in closed form: each feature's weight for an
   answer is its Laplace-smoothed log-probability under that answer, centred over answers
   and scaled by ``nb_scale`` times the typical ``sqrt(features per text)`` (the model's
   inputs are unit-length, Naive Bayes counts are not); intercepts are the log priors. This
   alone is a strong short-text classifier.
3. **Optimisation**: minibatch SGD on the cross-entropy from there, with the job's
   ``n_epochs`` and ``batch_size``, a base rate of ``learning_rate`` times the job's
   multiplier, decaying linearly to zero over the run. Every step's ``train_loss`` is the
   real mean loss of its minibatch under the weights before the update.

Everything the run needs comes in as arguments and every container is built inside
:meth:`LinearTrainer.train`, so runs can proceed in parallel threads; shuffling uses a
``random.Random(seed)`` of its own, and sums run in sorted feature order, so a seed gives
the same model bit for bit in any process.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from operator import sub
from typing import TYPE_CHECKING, Any

from ._trainer_features import BIAS, CHAR_NGRAMS, WORD_NGRAMS, ngram_features
from ._trainer_model import LinearModel, blocks, softmax
from ._trainer_types import Hyperparameters, StepMetrics, TrainingExample, TrainingRun

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["LinearTrainer"]

#: A wrong answer's loss is capped here (the service's losses are finite too).
LOSS_CAP = 20.0


@dataclass(frozen=True)
class _Encoded:
    """One example as the trainer sees it: known feature names, their blocks, answer index."""

    names: list[str]
    blocks: list[tuple[list[str], float]]
    target: int | None


@dataclass(frozen=True)
class LinearTrainer:
    """The local backend's built-in trainer (a :class:`~._trainer_types.Trainer`).

    Attributes:
        char_ngrams: Smallest and largest character n-gram length.
        word_ngrams: Smallest and largest word n-gram length.
        max_features: At most this many features (the most frequent) get weights.
        nb_init: Start from the Naive Bayes solution (else from zero).
        nb_scale: How strongly the Naive Bayes start is trusted (its logits' scale).
        learning_rate: Base SGD rate, multiplied by the job's ``learning_rate_multiplier``.
    """

    char_ngrams: tuple[int, int] = CHAR_NGRAMS
    word_ngrams: tuple[int, int] = WORD_NGRAMS
    max_features: int = 20_000
    nb_init: bool = True
    nb_scale: float = 0.05
    learning_rate: float = 2.0

    def load_model(self, data: dict[str, Any]) -> LinearModel:
        """The model whose ``to_json()`` gave ``data``."""
        return LinearModel.from_json(data)

    def train(
        self,
        examples: Sequence[TrainingExample],
        *,
        validation: Sequence[TrainingExample] = (),
        hyperparameters: Hyperparameters,
        seed: int = 0,
        on_step: Callable[[StepMetrics], None] | None = None,
    ) -> TrainingRun[LinearModel]:
        """Learn a :class:`LinearModel` from ``examples``; deterministic for a given ``seed``.

        Args:
            examples: What to learn from (at least one).
            validation: Held-out examples: each step reports the loss and accuracy on one
                rotating validation minibatch, each epoch's last step on all of them.
            hyperparameters: Epochs, batch size and learning-rate multiplier.
            seed: Shuffling seed.
            on_step: Called with each step's metrics as soon as they are known.

        Raises:
            ValueError: ``examples`` is empty.
        """
        if not examples:
            raise ValueError("training needs at least one example")
        answers = sorted({ex.answer for ex in examples})
        cache: dict[str, set[str]] = {}
        texts = [self._features(ex.context, cache) for ex in examples]
        model = LinearModel(
            answers,
            featurizer="ngrams",
            char_ngrams=self.char_ngrams,
            word_ngrams=self.word_ngrams,
        )
        vocabulary = self._vocabulary(texts)
        index = {a: i for i, a in enumerate(answers)}
        data = [
            _encode([n for n in names if n in vocabulary], index.get(ex.answer))
            for names, ex in zip(texts, examples, strict=True)
        ]
        model.weights = self._initial_weights(vocabulary, data, len(answers))
        weights = model.weights
        valid = [
            _encode(
                [n for n in self._features(ex.context, cache) if n in weights], index.get(ex.answer)
            )
            for ex in validation
        ]
        return _optimise(
            model, data, valid, hyperparameters, seed, self.learning_rate, on_step or _ignore
        )

    def _features(self, text: str, cache: dict[str, set[str]]) -> list[str]:
        return ngram_features(
            text, char_ngrams=self.char_ngrams, word_ngrams=self.word_ngrams, cache=cache
        )

    def _vocabulary(self, texts: list[list[str]]) -> set[str]:
        df = Counter(name for names in texts for name in names)
        # A feature every example has cannot tell answers apart; the bias does its job.
        # Most frequent first, ties by name: plain tuples sort several times faster than a key
        # function called once per feature.
        ranked = sorted((-n, name) for name, n in df.items() if n < len(texts))
        return {name for _, name in ranked[: self.max_features]}

    def _initial_weights(
        self, vocabulary: set[str], data: list[_Encoded], width: int
    ) -> dict[str, list[float]]:
        prior = [0.0] * width
        for ex in data:
            if ex.target is not None:
                prior[ex.target] += 1.0
        bias = _centred([math.log((p + 1.0) / (len(data) + width)) for p in prior])
        if not self.nb_init or not vocabulary:
            return {**{name: [0.0] * width for name in sorted(vocabulary)}, BIAS: bias}
        counts = {name: [1.0] * width for name in sorted(vocabulary)}  # Laplace smoothing
        totals = [float(len(vocabulary))] * width
        for ex in data:
            if ex.target is None:
                continue
            for name in ex.names:
                counts[name][ex.target] += 1.0
            totals[ex.target] += len(ex.names)
        # Naive Bayes sums one log-probability per feature; the model scales each block's
        # sum by 1/sqrt(k), so undo that for the block's typical k.
        typical: dict[str, float] = {}
        for ex in data:
            for block, scale in ex.blocks:
                key = block[0][0]
                typical[key] = typical.get(key, 0.0) + 1.0 / scale / len(data)
        # Centred log(count / total) = centred log(count) - centred log(total); the totals'
        # part is the same for every feature. Most counts are the smoothing's 1 (log 0).
        minus = _centred([math.log(t) for t in totals])
        log = math.log
        weights: dict[str, list[float]] = {}
        for name, row in counts.items():
            logs = [log(c) for c in row]
            mean = sum(logs) / width
            factor = self.nb_scale * typical[name[0]]
            weights[name] = [factor * (x - mean - m) for x, m in zip(logs, minus, strict=True)]
        weights[BIAS] = bias
        return weights


def _ignore(_metrics: StepMetrics) -> None:
    return None


def _centred(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v - mean for v in values]


def _encode(names: list[str], target: int | None) -> _Encoded:
    return _Encoded(names, blocks(names), target)


def _forward(model: LinearModel, ex: _Encoded) -> tuple[float, bool, list[float]]:
    """Loss, correctness and the model's probabilities for one encoded example."""
    probs = softmax(model.block_logits(ex.blocks))
    if ex.target is None:  # an answer the model never learned (validation only)
        return LOSS_CAP, False, probs
    loss = min(LOSS_CAP, -math.log(max(probs[ex.target], 1e-12)))
    best = max(range(len(probs)), key=probs.__getitem__)
    return loss, best == ex.target, probs


def _evaluate(model: LinearModel, batch: Sequence[_Encoded]) -> tuple[float, float]:
    loss = correct = 0.0
    for ex in batch:
        ex_loss, ok, _ = _forward(model, ex)
        loss += ex_loss
        correct += ok
    n = max(1, len(batch))
    return loss / n, correct / n


def _optimise(
    model: LinearModel,
    data: list[_Encoded],
    valid: list[_Encoded],
    hyper: Hyperparameters,
    seed: int,
    learning_rate: float,
    on_step: Callable[[StepMetrics], None],
) -> TrainingRun[LinearModel]:
    rng = random.Random(seed)
    order = list(range(len(data)))
    size = hyper.batch_size
    per_epoch = math.ceil(len(data) / size)
    total = hyper.n_epochs * per_epoch
    rate0 = learning_rate * hyper.learning_rate_multiplier
    weights = model.weights
    steps: list[StepMetrics] = []
    epoch_ends: list[int] = []
    snapshots: dict[int, LinearModel] = {}
    step = 0
    for _epoch in range(hyper.n_epochs):
        rng.shuffle(order)
        for start in range(0, len(order), size):
            batch = [data[i] for i in order[start : start + size]]
            # Linear decay to zero: big moves early, settling at the end.
            rate = rate0 * (total - step) / total / len(batch)
            step += 1
            loss_sum = 0.0
            correct = 0
            updates: list[tuple[_Encoded, list[float]]] = []
            for ex in batch:
                loss, ok, probs = _forward(model, ex)
                loss_sum += loss
                correct += ok
                if ex.target is not None:
                    probs[ex.target] -= 1.0  # d(loss)/d(logits)
                    updates.append((ex, probs))
            # All of the batch's gradients are taken at the same weights, then applied.
            for ex, delta in updates:
                step_bias = [rate * d for d in delta]
                weights[BIAS] = list(map(sub, weights[BIAS], step_bias))
                for block, scale in ex.blocks:
                    step_row = [scale * d for d in step_bias]
                    for name in block:
                        weights[name] = list(map(sub, weights[name], step_row))
            valid_loss = valid_acc = full_loss = full_acc = None
            if valid:
                vb = [valid[(step * size + j) % len(valid)] for j in range(min(size, len(valid)))]
                valid_loss, valid_acc = _evaluate(model, vb)
                if start + size >= len(order):  # the epoch's last step
                    full_loss, full_acc = _evaluate(model, valid)
            metrics = StepMetrics(
                step=step,
                train_loss=loss_sum / len(batch),
                train_mean_token_accuracy=correct / len(batch),
                valid_loss=valid_loss,
                valid_mean_token_accuracy=valid_acc,
                full_valid_loss=full_loss,
                full_valid_mean_token_accuracy=full_acc,
            )
            steps.append(metrics)
            on_step(metrics)
        epoch_ends.append(step)
        snapshots[step] = model.rounded()
    # The final model is the last epoch's snapshot itself: neither is changed once trained.
    return TrainingRun(
        model=snapshots[step], steps=steps, epoch_ends=epoch_ends, snapshots=snapshots
    )
