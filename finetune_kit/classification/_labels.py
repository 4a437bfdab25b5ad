"""Labels: the normalised label set, and how labels are read from one output token.

Pure logic only: :class:`LabelSet` validates and orders what the caller gave;
:func:`plan_keys` picks the token to bias for each label in a model's encoding (single-token
aliases when first tokens collide); :func:`match_label` reads a label out of free text.
"""

from __future__ import annotations

import collections
import enum
import functools
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, cast

from ..facts._tokens import encoding_name_for_model, get_encoding

__all__ = [
    "KeyPlan",
    "LabelSet",
    "LabelsInput",
    "cached_plan",
    "match_label",
    "plan_for",
    "plan_keys",
]

#: The label set: strings, an Enum class (string values, else member names), or a mapping
#: label -> description (descriptions are listed in the prompt).
LabelsInput = Sequence[str] | Mapping[str, str] | type[enum.Enum]


@dataclass(frozen=True)
class LabelSet:
    """The labels of one classification, normalised: names in order, optional descriptions."""

    names: tuple[str, ...]
    descriptions: tuple[str | None, ...]

    @classmethod
    def of(cls, labels: LabelsInput | LabelSet) -> LabelSet:
        """Normalise a sequence of strings, an Enum class or a label -> description mapping.

        Raises:
            TypeError: ``labels`` is a single string, or holds something other than strings.
            ValueError: fewer than two labels, an empty label, or the same label twice.
        """
        if isinstance(labels, LabelSet):
            return labels
        if isinstance(labels, str):
            raise TypeError(
                f"labels must be a sequence of strings, not one string ({labels!r}); "
                f"did you mean {labels.split(',')!r}?"
            )
        descriptions: tuple[str | None, ...]
        if type(labels) in (list, tuple):  # the common case, before the slower ABC checks
            names = tuple(cast("Sequence[str]", labels))
            descriptions = (None,) * len(names)
        elif isinstance(labels, type) and issubclass(labels, enum.Enum):
            names = tuple(m.value if isinstance(m.value, str) else m.name for m in labels)
            descriptions = (None,) * len(names)
        elif isinstance(labels, Mapping):
            names = tuple(labels)
            descriptions = tuple(_description(labels[n]) for n in names)
        elif isinstance(labels, Sequence):
            names = tuple(labels)
            descriptions = (None,) * len(names)
        else:
            raise TypeError(
                "labels must be a sequence of strings, an Enum class or a mapping "
                f"label -> description, not {type(labels).__name__}"
            )
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"labels must be strings, got {name!r}")
            if not name.strip():
                raise ValueError("labels cannot be empty or blank")
        if len(names) < 2:
            raise ValueError(f"classification needs at least two labels, got {list(names)!r}")
        if len(set(names)) != len(names):
            twice = sorted(n for n, k in collections.Counter(names).items() if k > 1)
            raise ValueError(f"labels must be distinct; repeated: {twice!r}")
        return cls(names, descriptions)

    @property
    def described(self) -> bool:
        """True when at least one label has a description."""
        return any(d is not None for d in self.descriptions)


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"label descriptions must be strings, got {value!r}")
    return value.strip() or None


@dataclass(frozen=True)
class KeyPlan:
    """How labels are read from one output token in one encoding.

    Attributes:
        keys: what the model answers for each label: the label itself, or its alias.
        token_ids: the first token of each key (the token biased for it).
        aliased: True when the labels' first tokens collide and aliases stand in for them.
        by_bytes: a token's bytes -> the index of the label it starts.
    """

    keys: tuple[str, ...]
    token_ids: tuple[int, ...]
    aliased: bool
    by_bytes: Mapping[bytes, int]


# A cache of a pure function of immutable input (the label names and the model's name).
@functools.lru_cache(maxsize=256)
def plan_keys(names: tuple[str, ...], encoding_name: str) -> KeyPlan:
    """Pick the tokens to bias for ``names`` in ``encoding_name`` (aliases on collisions).

    Raises:
        ValueError: the first tokens collide and no family of aliases has enough distinct
            single tokens (more than 676 labels).
    """
    encoding = get_encoding(encoding_name)
    # encode_ordinary: a label that looks like a special token is text, not a control token.
    firsts = [encoding.encode_ordinary(name)[0] for name in names]
    keys: tuple[str, ...] = names
    aliased = len(set(firsts)) != len(firsts)
    if aliased:
        keys, firsts = _aliases(encoding.encode_ordinary, len(names))
    by_bytes = {encoding.decode_single_token_bytes(t): i for i, t in enumerate(firsts)}
    return KeyPlan(keys, tuple(firsts), aliased, by_bytes)


# Plans already computed, so an async caller can tell whether computing one would load an
# encoding on its event loop. A cache of a pure function of immutable input, nothing else.
_plans: dict[tuple[tuple[str, ...], str], KeyPlan] = {}
_MAX_PLANS: Final = 1024


def cached_plan(names: tuple[str, ...], model: str) -> KeyPlan | None:
    """The plan for ``names`` with ``model``'s encoding if already computed, else None."""
    return _plans.get((names, model))


def plan_for(names: tuple[str, ...], model: str) -> KeyPlan:
    """:func:`plan_keys` in ``model``'s encoding (loads the encoding on first use)."""
    found = _plans.get((names, model))
    if found is None:
        found = plan_keys(names, encoding_name_for_model(model))
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()
        _plans[(names, model)] = found
    return found


def _alias_families(n: int) -> Iterator[list[str]]:
    if n <= len(string.ascii_uppercase):
        yield list(string.ascii_uppercase[:n])
    if n <= 999:
        yield [str(i) for i in range(1, n + 1)]
    yield [a + b for a in string.ascii_uppercase for b in string.ascii_uppercase]


def _aliases(encode: Callable[[str], list[int]], n: int) -> tuple[tuple[str, ...], list[int]]:
    for family in _alias_families(n):
        chosen: list[tuple[str, int]] = []
        seen: set[int] = set()
        for alias in family:
            tokens = encode(alias)
            if len(tokens) == 1 and tokens[0] not in seen:
                seen.add(tokens[0])
                chosen.append((alias, tokens[0]))
                if len(chosen) == n:
                    return tuple(a for a, _ in chosen), [t for _, t in chosen]
    raise ValueError(f"cannot find {n} distinct single-token aliases for colliding labels")


_PUNCTUATION: Final = "\"'`.*"


def _normalise(text: str) -> str:
    return " ".join(text.strip().strip(_PUNCTUATION).split()).casefold()


def match_label(answer: str, names: Sequence[str]) -> int | None:
    """The index of the label ``answer`` is: exactly, else ignoring case and whitespace.

    The loose match also ignores surrounding quotes, backticks, asterisks and a final period
    (``"Positive."`` is the label ``positive``), and only counts when exactly one label fits.
    """
    stripped = answer.strip()
    for i, name in enumerate(names):
        if stripped == name:
            return i
    wanted = _normalise(answer)
    hits = [i for i, name in enumerate(names) if _normalise(name) == wanted]
    return hits[0] if len(hits) == 1 else None
