"""Chat completions: from a distribution over whole answers to tokens, logprobs and choices.

A model (base or tuned) yields *candidate answers* with log-weights. Each answer has one or
more *surfaces*, the token sequences that spell it (in the model's own encoding): the answer
text itself, and, when the prompt lists it under an alias (a line such as ``A: positive`` or
``2) negative``), the alias as well, with a lower weight (``ALIAS_PENALTY``). Generation walks
the prefix tree of the surfaces token by token: the logit of a next token is the log of the
summed weights of the surfaces that continue with it, plus ``logit_bias`` for that token; a
token that continues no surface but is biased gets ``FLOOR_LOGIT`` plus its bias (at the first
position only: later ones see just the continuations and the end of the answer). So
``logit_bias`` of +100 on the first tokens of some labels restricts the answer to them, +100
on alias tokens ("A", "B", ...) picks the alias of the most likely label, and -100 bans a
token. A complete surface competes with its continuations as "end of answer"; after leaving
every surface (only possible through a biased off-surface first token) the model stops.

Reported logprobs are the post-bias log-softmax at each step (the end-of-answer option takes
part in the normalisation but is never listed), ``temperature`` 0 is argmax, other values
sample from logits divided by the temperature with a ``seed``-determined generator.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

    import tiktoken

__all__ = [
    "ALIAS_PENALTY",
    "FLOOR_LOGIT",
    "Candidate",
    "Generated",
    "TokenChoice",
    "enum_schema",
    "find_aliases",
    "find_listed_labels",
    "generate",
]

ALIAS_PENALTY = -4.0
FLOOR_LOGIT = -30.0

_ALIAS_LINE = re.compile(r"^\s*[\(\[]?([A-Za-z]|\d{1,2})[\)\]]?\s*[:.)=\-]\s+(\S.*?)\s*$", re.M)
_LIST_LINE = re.compile(
    r"(?:one of|labels?|categories|category|classes|options|choices|answers?)"
    r"(?:[ \t]+(?:are|is))?[ \t]*[:\-][ \t]*(\S.*)$",
    re.I | re.M,
)
_DESCRIPTION = re.compile(r"\s+\([^()]*\)$")
_BULLET = re.compile(r"^\s*[-*\u2022]\s+(\S.*?)\s*$", re.M)


@dataclass(frozen=True)
class Candidate:
    """One possible answer: its text, log-weight and the aliases the prompt gives it."""

    text: str
    logit: float
    aliases: tuple[str, ...] = ()


def _clean_label(raw: str) -> str:
    return raw.strip().strip("`'\"").strip().rstrip(".").strip().strip("`'\"")


def find_aliases(prompt: str) -> dict[str, str]:
    """Alias -> label lines in ``prompt`` (``A: positive``, ``1) negative``, ``(b) neutral``).

    A trailing parenthesised description (``A: spam (unwanted mail)``) is dropped.
    """
    found: dict[str, str] = {}
    for alias, label in _ALIAS_LINE.findall(prompt):
        # "A: name (what it means)": the description is not part of the label.
        cleaned = _clean_label(_DESCRIPTION.sub("", label))
        if cleaned and alias not in found:
            found[alias] = cleaned
    return found


def find_listed_labels(prompt: str) -> list[str]:
    """Labels a prompt lists: after "one of:", "labels:", ..., or as bullet lines.

    A bullet's description after ``": "`` (``- spam: unwanted mail``) is dropped.
    """
    labels: list[str] = []
    for line in _LIST_LINE.findall(prompt):
        labels.extend(_clean_label(p) for p in re.split(r",|\||;|\bor\b", line))
    # "- name: what it means": the description is not part of the label.
    labels.extend(_clean_label(b.split(": ", 1)[0]) for b in _BULLET.findall(prompt))
    out: list[str] = []
    for label in labels:
        if label and len(label) <= 100 and label not in out:
            out.append(label)
    return out


def enum_schema(response_format: Any) -> tuple[str, list[str]] | None:
    """``(property, values)`` when ``response_format`` is a json_schema with a string enum."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            if isinstance(sub, dict) and isinstance(sub.get("enum"), list):
                return str(name), [str(v) for v in sub["enum"]]
    return None


@dataclass(frozen=True)
class TokenChoice:
    """One generated token with its logprob and the top alternatives."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Generated:
    """The outcome of one choice."""

    tokens: list[TokenChoice]
    text: str
    finish_reason: str


@dataclass(frozen=True)
class _Surface:
    tokens: tuple[int, ...]
    logit: float


def _surfaces(
    candidates: list[Candidate], enc: tiktoken.Encoding, wrap: tuple[str, str] | None
) -> list[_Surface]:
    out: list[_Surface] = []
    for cand in candidates:
        texts = [(cand.text, cand.logit)]
        texts += [(alias, cand.logit + ALIAS_PENALTY) for alias in cand.aliases]
        for text, logit in texts:
            shown = text if wrap is None else f"{wrap[0]}{json.dumps(text)[1:-1]}{wrap[1]}"
            tokens = tuple(enc.encode(shown, disallowed_special=()))
            if tokens:
                out.append(_Surface(tokens, logit))
    return out


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def generate(
    candidates: list[Candidate],
    *,
    enc: tiktoken.Encoding,
    logit_bias: dict[int, float],
    max_tokens: int | None,
    temperature: float,
    rng: random.Random,
    top_logprobs: int = 0,
    json_property: str | None = None,
) -> Generated:
    """Generate one answer token by token (see the module docstring for the rules).

    Args:
        candidates: The answers the model can give, with log-weights.
        enc: The model's encoding.
        logit_bias: Token id -> bias, applied at every position.
        max_tokens: Cap on generated tokens (``finish_reason`` becomes ``"length"``).
        temperature: 0 for argmax, else the sampling temperature.
        rng: The generator sampling uses.
        top_logprobs: How many alternatives to keep per token.
        json_property: When set, every answer is spelt ``{"<property>": "<answer>"}``.
    """
    wrap = None if json_property is None else (f'{{"{json_property}": "', '"}')
    live = _surfaces(candidates, enc, wrap)
    prefix: list[int] = []
    chosen: list[TokenChoice] = []
    finish = "stop"
    while live:
        if max_tokens is not None and len(prefix) >= max_tokens:
            finish = "length"
            break
        k = len(prefix)
        by_token: dict[int, list[float]] = {}
        stop_weights: list[float] = []
        for surface in live:
            if len(surface.tokens) == k:
                stop_weights.append(surface.logit)
            else:
                by_token.setdefault(surface.tokens[k], []).append(surface.logit)
        logits = {t: _logsumexp(ws) + logit_bias.get(t, 0.0) for t, ws in by_token.items()}
        if k == 0:
            # Off-answer tokens only matter first: that is where a +100 bias restricts the
            # answer. Later, a real model would repeat a biased token until max_tokens;
            # finishing the answer instead keeps unbounded requests short.
            for t, bias in logit_bias.items():
                if t not in logits:
                    logits[t] = FLOOR_LOGIT + bias
        options: list[tuple[int | None, float]] = sorted(logits.items())
        if stop_weights:
            options.append((None, _logsumexp(stop_weights)))
        norm = _logsumexp([v for _, v in options])
        pick = _pick(options, temperature, rng)
        if pick is None:
            break
        logprob = logits[pick] - norm
        top: tuple[tuple[int, float], ...] = ()
        if top_logprobs:
            ranked = sorted(logits.items(), key=lambda kv: (-kv[1], kv[0]))[:top_logprobs]
            top = tuple((t, v - norm) for t, v in ranked)
        chosen.append(TokenChoice(pick, logprob, top))
        prefix.append(pick)
        live = [s for s in live if len(s.tokens) > k and s.tokens[k] == pick]
    text = enc.decode([c.token for c in chosen])
    return Generated(tokens=chosen, text=text, finish_reason=finish)


def _pick(
    options: list[tuple[int | None, float]], temperature: float, rng: random.Random
) -> int | None:
    if temperature <= 0:
        # Ties resolve to the first option in token-id order, keeping argmax deterministic.
        return max(options, key=lambda kv: kv[1])[0]
    scaled = [v / temperature for _, v in options]
    top = max(scaled)
    weights = [math.exp(v - top) for v in scaled]
    return rng.choices([t for t, _ in options], weights=weights, k=1)[0]
