"""What the built-in model reads: text helpers and the two feature extractors.

Features are names (strings), present or absent, never counts: short texts rarely repeat an
n-gram, and presence keeps long prompts from drowning short ones. Every extractor returns its
names sorted, so a model sums its weights in the same order in every process (Python's set
order changes with the hash seed; float sums do not commute bit for bit).

- :func:`ngram_features` (the current model): character 1-4-grams of the lower-cased text
  (whitespace runs folded to one space, padded with a space at each end so word starts and
  ends are n-grams too) plus lower-cased word unigrams and bigrams, separately for the last
  line and for the lines before it. Character n-grams carry spelling (languages, typos,
  morphology); word n-grams carry topic.
- :func:`features` (models saved before 0.x): word unigrams and bigrams only, with a bias
  name and the ``1/sqrt(n)`` scale; kept so models trained by older versions still load and
  answer exactly as they did.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

__all__ = [
    "BIAS",
    "content_text",
    "context_text",
    "features",
    "ngram_features",
    "words",
]

_WORD = re.compile(r"\w+", re.UNICODE)

#: The feature every text has (the per-answer intercept).
BIAS = "<bias>"

#: Character n-gram lengths and word n-gram lengths the built-in model reads.
CHAR_NGRAMS = (1, 4)
WORD_NGRAMS = (1, 2)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return _WORD.findall(text.lower())


def features(text: str) -> dict[str, float]:
    """Legacy features: binary word unigrams and bigrams plus a bias, scaled to unit norm."""
    toks = words(text)
    names = set(toks)
    names.update(f"{a} {b}" for a, b in itertools.pairwise(toks))
    names.add(BIAS)
    scale = 1.0 / math.sqrt(len(names))
    return dict.fromkeys(sorted(names), scale)


def ngram_features(
    text: str,
    *,
    char_ngrams: tuple[int, int] = CHAR_NGRAMS,
    word_ngrams: tuple[int, int] = WORD_NGRAMS,
    cache: dict[str, set[str]] | None = None,
) -> list[str]:
    """Sorted names of the character and word n-grams in ``text`` (no bias).

    The last line of ``text`` (for a conversation: the message the answer follows) and the
    lines before it (earlier messages, system prompts) are read as separate blocks: names
    from the last line are prefixed ``c`` (characters) and ``w`` (words), names from earlier
    lines ``C`` and ``W``. A model trained on one fixed system prompt then learns nothing
    from the earlier lines (they are the same in every example) and is not misled when a
    caller adds instructions of its own before the message.

    Args:
        text: What the model reads.
        char_ngrams: Smallest and largest character n-gram length (``(1, 0)``: none).
        word_ngrams: Smallest and largest word n-gram length (``(1, 0)``: none).
        cache: Names of earlier lines already seen, by text (a trainer passes one dict for
            all its examples, which mostly share their system prompt).
    """
    head, _, last = text.rpartition("\n")
    names: set[str] = set()
    _add_ngrams(names, last, "c", "w", char_ngrams, word_ngrams)
    if head.strip():
        earlier = None if cache is None else cache.get(head)
        if earlier is None:
            earlier = set()
            _add_ngrams(earlier, head, "C", "W", char_ngrams, word_ngrams)
            if cache is not None:
                cache[head] = earlier
        names |= earlier
    return sorted(names)


def _add_ngrams(
    names: set[str],
    text: str,
    char_prefix: str,
    word_prefix: str,
    char_ngrams: tuple[int, int],
    word_ngrams: tuple[int, int],
) -> None:
    lowered = text.lower()
    padded = " " + " ".join(lowered.split()) + " "
    lo, hi = char_ngrams
    for n in range(lo, hi + 1):
        names.update(char_prefix + padded[i : i + n] for i in range(len(padded) - n + 1))
    toks = _WORD.findall(lowered)
    lo, hi = word_ngrams
    for n in range(lo, hi + 1):
        names.update(word_prefix + " ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))


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
