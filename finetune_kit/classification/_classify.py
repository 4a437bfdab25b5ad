"""classify(): the answer is always one of the labels.

The technique ladder, chosen per model by what the endpoint accepts (docs/classification.md
describes it for users):

1. ``logit_bias`` - every label's first token, in the model's own encoding, gets a bias of
   +100 and the reply is one token long, so the model can only start a label; ``logprobs``
   returns the distribution over those tokens, renormalised into label probabilities. Labels
   whose first tokens collide are listed under single-token aliases (``A``, ``B``, ... or
   ``1``, ``2``, ...) and the aliases are biased instead.
2. ``structured`` - a strict JSON schema whose ``label`` is an ``enum`` of the labels, for
   endpoints that refuse ``logit_bias``.
3. ``prompt`` - the labels are listed, the answer matched exactly, then case- and
   whitespace-insensitively; a bounded number of re-asks follow; then
   :class:`~finetune_kit.ClassificationError` (or an abstention when the caller allows one).

A 400 naming a parameter we added (``unsupported_parameter``/``unsupported_value`` and the
like) changes that one thing and resends: ``max_tokens`` becomes ``max_completion_tokens``,
``temperature``/``logprobs`` are dropped, a refused ``logit_bias`` or ``response_format``
moves one rung down. Each refusal is remembered per endpoint (``base_url``) and model, so
the next call starts where the last one ended; nothing is retried blindly.

Structure: one pure generator (:func:`classify_steps`) decides everything and *yields* the
requests it needs as flow effects; ``run_flow``/``arun_flow`` (``_client.py``) perform them
through the retry layer on a sync or an async client, so ``classify`` and ``aclassify`` cannot
drift apart. The batch path and :class:`~finetune_kit.TunedModel` reuse the same generator.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import json
import logging
import math
import string
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

import openai
from pydantic import BaseModel, ConfigDict

from .._core.client import Flow, Request, arun_flow, resolve_async_client, resolve_client, run_flow
from .._core.progress import progress_bar
from .._core.retry import FAIL_FAST_CODES
from .._exceptions import ClassificationError
from ..facts._tokens import encoding_name_for_model, get_encoding

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion

    from .._core.retry import RetryPolicy

__all__ = [
    "Classification",
    "LabelSet",
    "TokenUsage",
    "aclassify",
    "aclassify_many",
    "classify",
    "classify_many",
]

logger = logging.getLogger("finetune_kit")

ClientT = TypeVar("ClientT", openai.OpenAI, openai.AsyncOpenAI)

Technique = Literal["logit_bias", "structured", "prompt"]
TechniqueChoice = Literal["auto", "logit_bias", "structured", "prompt"]
#: A chat message as the SDK takes it: ``{"role": ..., "content": ...}``.
Message = Mapping[str, Any]
#: What to classify: a string (sent as the user's message) or a whole conversation.
TextInput = str | Sequence[Message]
#: The label set: strings, an Enum class (string values, else member names), or a mapping
#: label -> description (descriptions are listed in the prompt).
LabelsInput = Sequence[str] | Mapping[str, str] | type[enum.Enum]
#: Few-shot examples: (text, label) pairs, shown to the model as earlier turns.
ExamplesInput = Sequence[tuple[str, str]]

_LADDER: Final[tuple[Technique, ...]] = ("logit_bias", "structured", "prompt")
_MAX_TOP_LOGPROBS: Final = 20
_BIAS: Final = 100
# Parameters classify adds to a request and can do without (or swap). A 400 naming one of them
# is a capability answer, not an error in the caller's input.
_OWN_PARAMS: Final = (
    "max_completion_tokens",
    "response_format",
    "top_logprobs",
    "temperature",
    "logit_bias",
    "max_tokens",
    "logprobs",
)
_REFUSAL_CODES: Final = frozenset({"unsupported_parameter", "unsupported_value"})
# The parameters without which a technique does not work at all.
_TECHNIQUE_PARAMS: Final[dict[Technique, frozenset[str]]] = {
    "logit_bias": frozenset({"logit_bias"}),
    "structured": frozenset({"response_format"}),
    "prompt": frozenset(),
}


# --- Results ---------------------------------------------------------------------------------


class TokenUsage(BaseModel):
    """Tokens spent, summed over every request made for a result (re-asks included).

    Attributes:
        prompt_tokens: input tokens.
        completion_tokens: output tokens (reasoning tokens included where the model has them).
        requests: chat completion requests answered (refused ones are not billed, not counted).
    """

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            requests=self.requests + other.requests,
        )


class Classification(BaseModel):
    """The label a model chose for one text.

    Attributes:
        label: one of the labels, always; None only when ``abstain_below`` was given and the
            model's confidence fell below it (or, with ``abstain_below`` given, when no label
            could be read from the answer).
        probabilities: label -> probability, renormalised over the labels, when the technique
            sees the model's distribution (``logit_bias`` with logprobs); labels outside the
            top 20 tokens get 0.0. None otherwise.
        probability_outside: the probability mass the model put on tokens that start no label
            (before renormalisation); None when the distribution is not seen.
        confidence: the probability of the chosen label, when known. When it is None,
            ``abstain_below`` cannot apply and the model's answer is returned.
        technique: the rung of the ladder that produced the answer.
        usage: tokens spent on this text.
        raw_output: the model's last answer as text (an alias, JSON, or the label itself).
        model: the model asked.
    """

    model_config = ConfigDict(frozen=True)

    label: str | None
    probabilities: dict[str, float] | None = None
    probability_outside: float | None = None
    confidence: float | None = None
    technique: Technique
    usage: TokenUsage = TokenUsage()
    raw_output: str | None = None
    model: str

    @property
    def abstained(self) -> bool:
        """True when the caller allowed abstention and the model gave no confident label."""
        return self.label is None

    def _repr_html_(self) -> str:
        from ..display import _html

        return _html.classification(self)


# --- Labels ----------------------------------------------------------------------------------


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
        else:
            names = tuple(labels)
            descriptions = (None,) * len(names)
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


@functools.lru_cache(maxsize=256)
def _plan_for(names: tuple[str, ...], model: str) -> KeyPlan:
    return plan_keys(names, encoding_name_for_model(model))


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


# --- Prompts ---------------------------------------------------------------------------------


def _listing(labels: LabelSet, keys: tuple[str, ...] | None) -> str:
    """The label list for the system prompt: inline when short and plain, else one per line."""
    if keys is not None:
        return "\n".join(
            f"{key}: {name}" + (f" ({desc})" if desc else "")
            for key, name, desc in zip(keys, labels.names, labels.descriptions, strict=True)
        )
    if labels.described or any("," in n or "\n" in n for n in labels.names):
        return "\n" + "\n".join(
            f"- {name}" + (f": {desc}" if desc else "")
            for name, desc in zip(labels.names, labels.descriptions, strict=True)
        )
    return " " + ", ".join(labels.names)


def _answer_rule(technique: Technique, labels: LabelSet, aliases: tuple[str, ...] | None) -> str:
    """The one sentence telling the model how to answer (also the re-ask message)."""
    if aliases is not None:
        kind = "letter" if len(aliases[0]) == 1 and aliases[0].isalpha() else "code"
        if aliases[0].isdigit():
            kind = "number"
        return f"Reply with only the {kind} of one label:\n{_listing(labels, aliases)}"
    if technique == "structured":
        return f"Labels:{_listing(labels, None)}"
    return f"Reply with only one of these labels:{_listing(labels, None)}"


@functools.lru_cache(maxsize=256)
def _system_prompt(
    technique: Technique,
    labels: LabelSet,
    aliases: tuple[str, ...] | None,
    instructions: str | None,
) -> str:
    task = instructions.strip() if instructions else "Classify the text."
    return f"{task}\n{_answer_rule(technique, labels, aliases)}"


def _structured_format(labels: LabelSet) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "classification",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"label": {"type": "string", "enum": list(labels.names)}},
                "required": ["label"],
                "additionalProperties": False,
            },
        },
    }


def user_turns(text: TextInput) -> list[dict[str, Any]]:
    if isinstance(text, str):
        return [{"role": "user", "content": text}]
    turns = [dict(m) for m in text]
    if not turns:
        raise ValueError("text is an empty list of messages")
    for turn in turns:
        if "role" not in turn:
            raise ValueError(f"every message needs a 'role': {turn!r}")
    return turns


# --- Capabilities ----------------------------------------------------------------------------

_caps_lock = threading.Lock()
# (base_url, model) -> the parameters that endpoint refused for that model.
_refusals: dict[tuple[str, str], frozenset[str]] = {}
# (base_url, model) pairs for which a classification has succeeded: the ladder is settled.
_settled: set[tuple[str, str]] = set()


def known_refusals(key: tuple[str, str]) -> frozenset[str]:
    """The parameters the endpoint refused for the model, as far as this process knows."""
    return _refusals.get(key, frozenset())


def remember_refusal(key: tuple[str, str], param: str) -> None:
    """Remember that the endpoint refused ``param`` for the model."""
    with _caps_lock:
        _refusals[key] = _refusals.get(key, frozenset()) | {param}


def is_settled(key: tuple[str, str]) -> bool:
    """True once a classification has succeeded with the model at the endpoint."""
    return key in _settled


def _mark_settled(key: tuple[str, str]) -> None:
    if key not in _settled:
        with _caps_lock:
            _settled.add(key)


_resolved_lock = threading.Lock()
_resolved: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_endpoints: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _cached(client: ClientT | None, resolve: Callable[[ClientT | None], ClientT]) -> ClientT:
    # A client copy (with_options) costs about as much as the rest of classify()'s own work.
    if client is None:
        return resolve(None)
    found: ClientT | None = _resolved.get(client)
    if found is None:
        found = resolve(client)
        with _resolved_lock:
            _resolved[client] = found
    return found


def sync_client(client: openai.OpenAI | None) -> openai.OpenAI:
    """:func:`resolve_client`, made once per caller's client object."""
    return _cached(client, resolve_client)


def async_client(client: openai.AsyncOpenAI | None) -> openai.AsyncOpenAI:
    """:func:`resolve_async_client`, made once per caller's client object."""
    return _cached(client, resolve_async_client)


def forget_capabilities() -> None:
    """Forget every remembered refusal (tests; or after an endpoint changed what it accepts)."""
    with _caps_lock:
        _refusals.clear()
        _settled.clear()


def capability_key(client: openai.OpenAI | openai.AsyncOpenAI, model: str) -> tuple[str, str]:
    """What refusals are remembered under: the endpoint and the model, not the client object.

    Clients are copied freely (``with_options``); the endpoint's capabilities stay the same.
    """
    endpoint = _endpoints.get(client)
    if endpoint is None:  # str(URL) is slow enough to matter per call: once per client
        endpoint = str(client.base_url)
        _endpoints[client] = endpoint
    return (endpoint, model)


def _usable(technique: Technique, refused: frozenset[str] | set[str]) -> bool:
    if technique == "logit_bias":
        no_cap = {"max_tokens", "max_completion_tokens"} <= refused
        return "logit_bias" not in refused and not no_cap
    if technique == "structured":
        return "response_format" not in refused
    return True


def _next_technique(
    choice: TechniqueChoice, refused: frozenset[str] | set[str], after: Technique | None = None
) -> Technique | None:
    """The technique to try: the forced one while usable, else the first usable rung."""
    if choice != "auto":
        return choice if _usable(choice, refused) else None
    start = 0 if after is None else _LADDER.index(after) + 1
    return next((t for t in _LADDER[start:] if _usable(t, refused)), None)


def refused_parameter(exc: openai.BadRequestError, body: Mapping[str, Any]) -> str | None:
    """The parameter we added that ``exc`` refuses, or None when the 400 is about something else.

    OpenAI names it in ``param`` (``unsupported_parameter``/``unsupported_value``, or ``None``
    for a ``logit_bias`` key outside the vocabulary); some compatible servers only quote it in
    the message.
    """
    param = exc.param.split(".", 1)[0].split("[", 1)[0] if exc.param else None
    if param is not None:
        return param if param in _OWN_PARAMS and param in body else None
    if exc.code in _REFUSAL_CODES:
        message = str(exc.message)
        for name in _OWN_PARAMS:  # longest first, so max_completion_tokens beats max_tokens
            if name in body and f"'{name}'" in message:
                return name
    return None


# --- Requests and answers --------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    index: int | None
    raw: str | None
    probabilities: dict[str, float] | None = None
    outside: float | None = None


@dataclass
class Spec:
    """Everything about a classification except the text: built once per call or batch."""

    labels: LabelSet
    model: str
    key: tuple[str, str]
    instructions: str | None = None
    examples: tuple[tuple[str, int], ...] = ()
    choice: TechniqueChoice = "auto"
    abstain_below: float | None = None
    reasks: int = 2
    encoding_model: str | None = None
    _plan: KeyPlan | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        *,
        labels: LabelsInput | LabelSet,
        model: str,
        key: tuple[str, str],
        instructions: str | None,
        examples: ExamplesInput | None,
        technique: TechniqueChoice,
        abstain_below: float | None,
        reasks: int,
        base_model: str | None,
    ) -> Spec:
        """Validate the options shared by every text of one call.

        Raises:
            ValueError: an unknown technique, an example with a label not in ``labels``, a
                threshold outside [0, 1] or a negative ``reasks``.
        """
        label_set = LabelSet.of(labels)
        if technique not in ("auto", *_LADDER):
            raise ValueError(f"technique must be 'auto' or one of {_LADDER}, not {technique!r}")
        if abstain_below is not None and not 0.0 <= abstain_below <= 1.0:
            raise ValueError(f"abstain_below is a probability in [0, 1], not {abstain_below}")
        if reasks < 0:
            raise ValueError("reasks cannot be negative")
        index = {name: i for i, name in enumerate(label_set.names)}
        shots: list[tuple[str, int]] = []
        for text, label in examples or ():
            if label not in index:
                raise ValueError(f"example label {label!r} is not one of {label_set.names!r}")
            shots.append((text, index[label]))
        return cls(
            labels=label_set,
            model=model,
            key=key,
            instructions=instructions,
            examples=tuple(shots),
            choice=technique,
            abstain_below=abstain_below,
            reasks=reasks,
            encoding_model=base_model,
        )

    def plan(self) -> KeyPlan:
        """The tokens to bias, computed on first need (it loads the model's encoding)."""
        if self._plan is None:
            self._plan = _plan_for(self.labels.names, self.encoding_model or self.model)
        return self._plan

    def start(self) -> tuple[Technique, set[str]]:
        """The technique a call begins with, and the refusals it starts from.

        ``auto`` starts on the highest rung the endpoint has not refused. A forced technique is
        tried even if it was refused before (the caller asked for it; endpoints change), but
        still without the other parameters the endpoint refused.
        """
        refused = set(known_refusals(self.key))
        if self.choice != "auto":
            refused -= _TECHNIQUE_PARAMS[self.choice]
            return self.choice, refused
        technique = _next_technique("auto", refused)
        return technique or "prompt", refused

    def messages(self, technique: Technique, text: TextInput) -> list[dict[str, Any]]:
        """System prompt, few-shot turns, then the text."""
        plan = self.plan() if technique == "logit_bias" else None
        aliases = plan.keys if plan is not None and plan.aliased else None
        system = _system_prompt(technique, self.labels, aliases, self.instructions)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for shot_text, index in self.examples:
            messages.append({"role": "user", "content": shot_text})
            messages.append({"role": "assistant", "content": self._say(technique, index)})
        messages.extend(user_turns(text))
        return messages

    def _say(self, technique: Technique, index: int) -> str:
        if technique == "logit_bias":
            return self.plan().keys[index]
        if technique == "structured":
            return json.dumps({"label": self.labels.names[index]})
        return self.labels.names[index]

    def body(
        self,
        technique: Technique,
        messages: list[dict[str, Any]],
        refused: frozenset[str] | set[str],
    ) -> dict[str, Any]:
        """The chat completion request for ``technique``, leaving out what was refused."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if "temperature" not in refused:
            body["temperature"] = 0
        cap = "max_tokens" if "max_tokens" not in refused else "max_completion_tokens"
        if technique == "logit_bias":
            plan = self.plan()
            body[cap] = 1
            body["logit_bias"] = {str(t): _BIAS for t in plan.token_ids}
            if not {"logprobs", "top_logprobs"} & refused:
                body["logprobs"] = True
                body["top_logprobs"] = min(_MAX_TOP_LOGPROBS, len(plan.token_ids))
        elif technique == "structured":
            body["response_format"] = _structured_format(self.labels)
        elif "max_tokens" not in refused:
            # Never shorter than the longest label (a token is at least one character); a
            # model that needed max_completion_tokens reasons first, so it gets no cap at all.
            body["max_tokens"] = max(len(n) for n in self.labels.names) + 8
        return body

    def read(self, technique: Technique, completion: ChatCompletion) -> _Answer:
        """The label index the completion chose (None when it chose none), with probabilities."""
        choice = completion.choices[0] if completion.choices else None
        if choice is None:
            return _Answer(None, None)
        message = choice.message
        raw = message.content if message.content is not None else message.refusal
        if technique == "logit_bias":
            return self._read_token(choice, raw)
        if message.content is None:
            return _Answer(None, raw)
        if technique == "structured":
            return _Answer(self._read_json(message.content), raw)
        return _Answer(match_label(message.content, self.labels.names), raw)

    def _read_token(self, choice: Any, raw: str | None) -> _Answer:
        plan = self.plan()
        entries = choice.logprobs.content if choice.logprobs is not None else None
        first = entries[0] if entries else None
        index: int | None = None
        if first is not None:
            index = plan.by_bytes.get(_token_bytes(first))
        if index is None and raw is not None:
            # No logprobs (some servers): read the text, which with max_tokens=1 is the token.
            index = plan.by_bytes.get(raw.encode("utf-8"))
            if index is None and raw in plan.keys:
                index = plan.keys.index(raw)
        if index is None or first is None:
            return _Answer(index, raw)
        probabilities, outside = self._distribution(first)
        return _Answer(index, raw, probabilities, outside)

    def _distribution(self, first: Any) -> tuple[dict[str, float] | None, float | None]:
        plan = self.plan()
        mass = [0.0] * len(self.labels.names)
        seen: set[bytes] = set()
        for entry in [first, *(first.top_logprobs or ())]:
            token = _token_bytes(entry)
            if token in seen:
                continue
            seen.add(token)
            index = plan.by_bytes.get(token)
            if index is not None:
                mass[index] = math.exp(entry.logprob)
        total = sum(mass)
        if not first.top_logprobs or total <= 0.0:
            return None, None
        probabilities = {name: m / total for name, m in zip(self.labels.names, mass, strict=True)}
        return probabilities, max(0.0, 1.0 - total)

    def _read_json(self, content: str) -> int | None:
        try:
            data = json.loads(content)
        except ValueError:
            return None
        label = data.get("label") if isinstance(data, dict) else None
        return match_label(label, self.labels.names) if isinstance(label, str) else None

    def result(self, technique: Technique, answer: _Answer, usage: TokenUsage) -> Classification:
        """The public result; applies ``abstain_below``."""
        label = self.labels.names[answer.index] if answer.index is not None else None
        confidence = (
            answer.probabilities[label]
            if answer.probabilities is not None and label is not None
            else None
        )
        if (
            self.abstain_below is not None
            and confidence is not None
            and confidence < self.abstain_below
        ):
            label = None
        return Classification(
            label=label,
            probabilities=answer.probabilities,
            probability_outside=answer.outside,
            confidence=confidence,
            technique=technique,
            usage=usage,
            raw_output=answer.raw,
            model=self.model,
        )

    def unanswered(
        self, technique: Technique, answer: _Answer, usage: TokenUsage
    ) -> Classification:
        """No label in the answer: abstain if the caller allows it, else ClassificationError."""
        if self.abstain_below is not None:
            return self.result(technique, answer, usage)
        raise ClassificationError(
            f"{self.model} answered {answer.raw!r} ({technique}), which is none of the labels "
            f"{list(self.labels.names)!r}",
            raw_output=answer.raw,
            labels=self.labels.names,
        )


def _token_bytes(entry: Any) -> bytes:
    raw = entry.bytes
    return bytes(raw) if raw is not None else str(entry.token).encode("utf-8")


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


class _Tally:
    """Tokens spent so far on one text (a TokenUsage is built once, at the end)."""

    __slots__ = ("completion", "prompt", "requests")

    def __init__(self) -> None:
        self.prompt = self.completion = self.requests = 0

    def add(self, completion: ChatCompletion) -> None:
        self.requests += 1
        if completion.usage is not None:
            self.prompt += completion.usage.prompt_tokens
            self.completion += completion.usage.completion_tokens

    def usage(self) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt, completion_tokens=self.completion, requests=self.requests
        )


def chat_request(body: Mapping[str, Any], description: str) -> Request:
    """``POST /chat/completions`` with ``body``, as a flow effect for either client."""
    return Request(
        description,
        # stream=False picks the overload that returns a ChatCompletion (or its coroutine).
        lambda client: client.chat.completions.create(**body, stream=False),
    )


# --- The ladder ------------------------------------------------------------------------------


def classify_steps(
    spec: Spec,
    text: TextInput,
    *,
    prefetched: tuple[Technique, ChatCompletion] | None = None,
) -> Flow[Classification]:
    """Classify one text: the whole ladder, as a generator of requests.

    Args:
        spec: the labels and options.
        text: what to classify.
        prefetched: the technique of the first request and its answer, already obtained
            (the batch path); the request it answered was built as this function would.
    """
    technique, refused = spec.start()
    answered: ChatCompletion | None = None
    if prefetched is not None:
        technique, answered = prefetched
    tally = _Tally()
    messages = spec.messages(technique, text)
    reasks = spec.reasks
    while True:
        body = spec.body(technique, messages, refused)
        if answered is not None:
            completion, answered = answered, None
        else:
            try:
                completion = yield chat_request(body, f"classify with {spec.model}")
            except openai.BadRequestError as exc:
                param = refused_parameter(exc, body)
                if param is None:
                    raise
                remember_refusal(spec.key, param)
                refused.add(param)
                logger.info(
                    "%s refused %r (%s); adapting the %s request",
                    spec.model,
                    param,
                    exc.code or "400",
                    technique,
                )
                if _usable(technique, refused):
                    continue
                nxt = _next_technique(spec.choice, refused, after=technique)
                if nxt is None:
                    raise
                technique = nxt
                messages = spec.messages(technique, text)
                continue
        tally.add(completion)
        answer = spec.read(technique, completion)
        if answer.index is not None:
            _mark_settled(spec.key)
            return spec.result(technique, answer, tally.usage())
        if technique == "logit_bias" and spec.choice == "auto":
            # With +100 on every label token, a reply starting no label means the endpoint
            # ignores logit_bias (or spends the one token on reasoning): use the next rung.
            logger.warning(
                "%s did not follow logit_bias (answered %r); using structured outputs instead",
                spec.model,
                answer.raw,
            )
            remember_refusal(spec.key, "logit_bias")
            refused.add("logit_bias")
            technique = _next_technique("auto", refused, after="logit_bias") or "prompt"
            messages = spec.messages(technique, text)
            continue
        if technique == "prompt" and reasks > 0 and answer.raw is not None:
            reasks -= 1
            messages = [
                *messages,
                {"role": "assistant", "content": answer.raw},
                {"role": "user", "content": _answer_rule("prompt", spec.labels, None)},
            ]
            continue
        return spec.unanswered(technique, answer, tally.usage())


# --- Public API ------------------------------------------------------------------------------


def classify(
    text: TextInput,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
) -> Classification:
    """Classify ``text`` into exactly one of ``labels``.

    Args:
        text: a string (sent as the user's message) or a list of chat messages.
        labels: a sequence of strings, an Enum class, or a mapping label -> description.
        model: the model (or Azure deployment) to ask.
        client: the client to use; omitted, one is built from ``OPENAI_*``.
        instructions: what the classification is about, put first in the system prompt
            (default ``"Classify the text."``).
        examples: few-shot (text, label) pairs shown as earlier turns.
        technique: ``"auto"`` walks the ladder as the endpoint allows; a named technique is
            used or fails.
        abstain_below: return ``label=None`` when the chosen label's probability is below
            this (and, instead of raising, when no label can be read from the answer).
        retry: how transient errors are retried (default :data:`DEFAULT_RETRY`).
        reasks: how many times the ``prompt`` technique asks again after an answer that is
            none of the labels.
        base_model: the model whose token encoding to use when ``model`` is a name the
            encoding cannot be told from (an Azure deployment, a local alias).

    Returns:
        The :class:`Classification`.

    Raises:
        ClassificationError: no label could be read from the answer (and ``abstain_below`` is
            None).
        openai.APIError: the request failed for another reason (after retries).
    """
    resolved = sync_client(client)
    spec = Spec.build(
        labels=labels,
        model=model,
        key=capability_key(resolved, model),
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    return run_flow(classify_steps(spec, text), resolved, retry)


async def aclassify(
    text: TextInput,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
) -> Classification:
    """The async sibling of :func:`classify` (same arguments, an ``AsyncOpenAI`` client)."""
    resolved = async_client(client)
    spec = Spec.build(
        labels=labels,
        model=model,
        key=capability_key(resolved, model),
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    return await arun_flow(classify_steps(spec, text), resolved, retry)


# --- Many texts ------------------------------------------------------------------------------

ItemResult = Classification | ClassificationError


def item_error(exc: Exception, spec: Spec, index: int) -> ClassificationError:
    """What one failed text becomes in a many-texts result; re-raises what dooms every text.

    Authentication, permission, unknown model and exhausted quota fail every other text the
    same way, so they stop the whole call; so do errors that are not the service's (bugs).
    """
    if isinstance(exc, ClassificationError):
        return exc
    fatal = isinstance(
        exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
    ) or (isinstance(exc, openai.RateLimitError) and exc.code in FAIL_FAST_CODES)
    if fatal or not isinstance(exc, openai.APIError):
        raise exc
    error = ClassificationError(
        f"text {index}: {type(exc).__name__}: {exc}", raw_output=None, labels=spec.labels.names
    )
    error.__cause__ = exc
    return error


def _needs_probe(spec: Spec, n: int) -> bool:
    # Until one call has settled what the endpoint accepts, send one text alone: otherwise
    # every concurrent first request would hit the same refusal.
    return n > 1 and spec.choice == "auto" and not is_settled(spec.key)


def classify_many(
    texts: Sequence[TextInput],
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> list[ItemResult]:
    """Classify many texts, ``concurrency`` at a time, results in input order.

    The sync form runs the requests on a pool of ``concurrency`` threads over the (thread-safe)
    sync client, so it works anywhere, event loop or not. A text that fails yields a
    :class:`ClassificationError` in its place (SDK errors wrapped, the original as
    ``__cause__``); errors that would fail every text (authentication, permission, unknown
    model, exhausted quota) are raised instead. The other arguments (``labels``, ``model``,
    ``client``, ``instructions``, ``examples``, ``technique``, ``abstain_below``, ``retry``,
    ``reasks``, ``base_model``) are those of :func:`classify`.

    Args:
        texts: the texts (strings or message lists).
        concurrency: requests in flight at once.
        progress: show a progress bar (``tqdm.auto``: terminal or notebook).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    resolved = sync_client(client)
    spec = Spec.build(
        labels=labels,
        model=model,
        key=capability_key(resolved, model),
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    items = list(texts)
    results: list[ItemResult | None] = [None] * len(items)

    def run(i: int) -> None:
        try:
            results[i] = run_flow(classify_steps(spec, items[i]), resolved, retry)
        except Exception as exc:
            results[i] = item_error(exc, spec, i)

    with progress_bar(
        total=len(items), enabled=progress, description=f"classify {model}", unit="text"
    ) as bar:
        start = 0
        if _needs_probe(spec, len(items)):
            run(0)
            bar.update(1)
            start = 1
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            # A window of futures rather than one per text: memory stays flat on huge inputs.
            pending: set[Future[None]] = set()
            try:
                for i in range(start, len(items)):
                    pending.add(pool.submit(run, i))
                    if len(pending) >= 2 * concurrency:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            future.result()
                            bar.update(1)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                        bar.update(1)
            finally:
                for future in pending:
                    future.cancel()
    return cast("list[ItemResult]", results)


async def aclassify_many(
    texts: Sequence[TextInput],
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> list[ItemResult]:
    """The async sibling of :func:`classify_many`: ``concurrency`` worker tasks on one loop."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    resolved = async_client(client)
    spec = Spec.build(
        labels=labels,
        model=model,
        key=capability_key(resolved, model),
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    items = list(texts)
    results: list[ItemResult | None] = [None] * len(items)
    with progress_bar(
        total=len(items), enabled=progress, description=f"classify {model}", unit="text"
    ) as bar:

        async def run(i: int) -> None:
            try:
                results[i] = await arun_flow(classify_steps(spec, items[i]), resolved, retry)
            except Exception as exc:
                results[i] = item_error(exc, spec, i)
            bar.update(1)

        start = 0
        if _needs_probe(spec, len(items)):
            await run(0)
            start = 1
        indices = iter(range(start, len(items)))

        async def worker() -> None:
            # One shared iterator: next() never awaits, so no two workers take the same text.
            for i in indices:
                await run(i)

        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return cast("list[ItemResult]", results)
