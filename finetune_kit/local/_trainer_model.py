"""The built-in model: softmax regression from text features to one of the learned answers.

``logits(text) = scale(text) * sum(weights[f] for f in features(text)) + weights[BIAS]``, one
row of weights per feature name, one column per answer. With the n-gram featurizer,
``scale`` is ``1/sqrt(k)`` for the ``k`` features of the text the model knows, so a text's
feature vector has unit length whatever its size; features the model never learned are
ignored. Models saved by earlier versions (``featurizer="words"``) keep their own features
and scale (see :func:`~._trainer_features.features`).

Saved form (:meth:`LinearModel.to_json`): the answers, the featurizer's settings, the sorted
feature names and all weights as one base64 string of little-endian float32 values, row by
row. The trainer rounds its weights to float32 before it hands a model out, so a reloaded
model answers bit for bit as the one that was saved.
"""

from __future__ import annotations

import base64
import itertools
import math
import operator
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any, Literal

from ._trainer_features import BIAS, CHAR_NGRAMS, WORD_NGRAMS, features, ngram_features

__all__ = ["LinearModel", "blocks", "softmax"]

#: Saved-form version of n-gram models (legacy word models carry no version).
_FORMAT = 2


def softmax(logits: list[float]) -> list[float]:
    """The distribution ``logits`` stand for (empty in, empty out)."""
    if not logits:
        return []
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def blocks(names: list[str]) -> list[tuple[list[str], float]]:
    """Split sorted n-gram ``names`` into blocks by kind (first letter), each with its scale.

    Each block (characters or words, of the last line or of earlier lines) is scaled to unit
    length on its own (``1/sqrt(size)``): a sentence has many more character n-grams than
    words, and one shared scale would let spelling drown topic.
    """
    out: list[tuple[list[str], float]] = []
    for _kind, group in itertools.groupby(names, key=operator.itemgetter(0)):
        part = list(group)
        out.append((part, 1.0 / math.sqrt(len(part))))
    return out


def _pack(rows: list[list[float]]) -> str:
    values = array("f", (w for row in rows for w in row))
    if sys.byteorder == "big":  # pragma: no cover - the saved form is little-endian
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def _unpack(text: str, n_rows: int, width: int) -> list[list[float]]:
    values = array("f")
    values.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    if len(values) != n_rows * width:
        raise ValueError(f"expected {n_rows * width} weights, found {len(values)}")
    flat = values.tolist()
    return [flat[i * width : (i + 1) * width] for i in range(n_rows)]


@dataclass
class LinearModel:
    """Softmax regression from text features to one of ``answers``.

    Attributes:
        answers: What the model can answer, in column order.
        weights: Feature name -> one weight per answer; :data:`BIAS` holds the intercepts.
        featurizer: ``"ngrams"`` (character and word n-grams, the built-in trainer's) or
            ``"words"`` (word n-grams, models saved by earlier versions).
        char_ngrams: Character n-gram lengths read by the ``"ngrams"`` featurizer.
        word_ngrams: Word n-gram lengths read by the ``"ngrams"`` featurizer.
    """

    answers: list[str]
    weights: dict[str, list[float]] = field(default_factory=dict)
    featurizer: Literal["ngrams", "words"] = "words"
    char_ngrams: tuple[int, int] = CHAR_NGRAMS
    word_ngrams: tuple[int, int] = WORD_NGRAMS

    def known_features(self, text: str) -> list[str]:
        """The sorted n-gram features of ``text`` that the model has weights for."""
        weights = self.weights
        names = ngram_features(text, char_ngrams=self.char_ngrams, word_ngrams=self.word_ngrams)
        return [name for name in names if name in weights]

    def logits(self, text: str) -> list[float]:
        """Unnormalised scores of each answer for the conversation ``text``."""
        if self.featurizer == "words":
            return self._word_logits(text)
        return self.logits_of(self.known_features(text))

    def logits_of(self, names: list[str]) -> list[float]:
        """Scores for a text whose known features are ``names`` (see :meth:`known_features`)."""
        return self.block_logits(blocks(names))

    def block_logits(self, parts: list[tuple[list[str], float]]) -> list[float]:
        """Scores for a text whose known features, split by :func:`blocks`, are ``parts``."""
        out = list(self.weights.get(BIAS) or [0.0] * len(self.answers))
        for block, scale in parts:
            # Every row has one weight per answer; sums run in the sorted order of ``block``.
            sums = map(sum, zip(*map(self.weights.__getitem__, block), strict=True))
            out = [o + scale * s for o, s in zip(out, sums, strict=True)]
        return out

    def _word_logits(self, text: str) -> list[float]:
        out = [0.0] * len(self.answers)
        for name, value in features(text).items():
            row = self.weights.get(name)
            if row is not None:
                for k, w in enumerate(row):
                    out[k] += w * value
        return out

    def probabilities(self, text: str) -> list[float]:
        """The model's distribution over ``answers``."""
        return softmax(self.logits(text))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable copy; :meth:`from_json` gives back an identical model."""
        if self.featurizer == "words":
            return {"answers": list(self.answers), "weights": self.weights}
        names = sorted(self.weights)
        return {
            "format": _FORMAT,
            "featurizer": self.featurizer,
            "char_ngrams": list(self.char_ngrams),
            "word_ngrams": list(self.word_ngrams),
            "answers": list(self.answers),
            "features": names,
            "weights": _pack([self.weights[name] for name in names]),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        """Inverse of :meth:`to_json` (also reads models saved by earlier versions)."""
        answers = [str(a) for a in data["answers"]]
        if "format" not in data:
            return cls(answers=answers, weights=dict(data["weights"]))
        if data["format"] != _FORMAT or data.get("featurizer") != "ngrams":
            raise ValueError(f"unknown model format {data['format']!r}")
        names = [str(n) for n in data["features"]]
        rows = _unpack(str(data["weights"]), len(names), len(answers))
        lo_c, hi_c = data["char_ngrams"]
        lo_w, hi_w = data["word_ngrams"]
        return cls(
            answers=answers,
            weights=dict(zip(names, rows, strict=True)),
            featurizer="ngrams",
            char_ngrams=(int(lo_c), int(hi_c)),
            word_ngrams=(int(lo_w), int(hi_w)),
        )

    def rounded(self) -> LinearModel:
        """A copy with every weight rounded to float32, the precision :meth:`to_json` keeps."""
        return LinearModel(
            list(self.answers),
            {k: array("f", v).tolist() for k, v in self.weights.items()},
            self.featurizer,
            self.char_ngrams,
            self.word_ngrams,
        )
