"""The technique ladder: one pure generator decides every request of one classification.

:class:`Spec` holds everything about a classification except the text (labels, model, where
capabilities are remembered, options) and builds requests and reads answers;
:func:`classify_steps` walks the ladder for one text and *yields* the requests it needs as
flow effects, which ``run_flow``/``arun_flow`` perform on a sync or an async client. The
runners, the batch path and :class:`~finetune_kit.TunedModel` all reuse it.

A 400 naming a parameter we added changes that one thing and resends: ``max_tokens`` becomes
``max_completion_tokens``, ``temperature``/``logprobs`` are dropped, a refused ``logit_bias``
or ``response_format`` moves one rung down; each refusal is remembered for the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import openai

from .._core.client import Flow, Request
from .._exceptions import ClassificationError
from ._capabilities import (
    Capabilities,
    CapabilityKey,
    capability_key,
    known_refusals,
    mark_settled,
    note_followed_bias,
    note_off_label,
    refused_parameter,
    remember_refusal,
)
from ._labels import KeyPlan, LabelSet, cached_plan, match_label, plan_for
from ._options import ClassifyOptions, ClientT, check_model, check_retry
from ._prompts import answer_rule, structured_format, system_prompt, user_turns, with_label_rule
from ._results import Classification, Technique, TokenUsage

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from openai.types.chat import ChatCompletion
    from typing_extensions import Unpack

    from ._labels import LabelsInput
    from ._options import Call, ClassifyKwargs
    from ._prompts import TextInput

__all__ = ["Spec", "chat_request", "classify_steps", "plan_off_loop", "prepare_call"]

logger = logging.getLogger("finetune_kit")

LADDER: Final[tuple[Technique, ...]] = ("logit_bias", "structured", "prompt")
_MAX_TOP_LOGPROBS: Final = 20
_BIAS: Final = 100
# The parameters without which a technique does not work at all.
_TECHNIQUE_PARAMS: Final[Mapping[Technique, frozenset[str]]] = MappingProxyType(
    {
        "logit_bias": frozenset({"logit_bias"}),
        "structured": frozenset({"response_format"}),
        "prompt": frozenset(),
    }
)


@dataclass(frozen=True)
class _Answer:
    index: int | None
    raw: str | None
    probabilities: dict[str, float] | None = None
    outside: float | None = None


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


@dataclass
class Spec:
    """Everything about a classification except the text: built once per call or batch.

    ``as_trained``: each text is a conversation sent exactly as given (a tuned model asked
    what it was trained on); the labels are never listed except on the ``prompt`` rung, and
    ``logit_bias`` is used only when the labels' own first tokens are distinct (a model tuned
    to answer with the labels cannot answer with aliases).
    """

    labels: LabelSet
    model: str
    key: CapabilityKey
    options: ClassifyOptions = field(default_factory=ClassifyOptions)
    # options.examples with each label as its index in ``labels``.
    shots: tuple[tuple[str, int], ...] = ()
    as_trained: bool = False
    _plan: KeyPlan | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        labels: LabelsInput | LabelSet,
        model: str,
        key: CapabilityKey,
        options: ClassifyOptions,
        *,
        as_trained: bool = False,
    ) -> Spec:
        """The spec of one call from checked options.

        Raises:
            ValueError: an example's label is not one of ``labels``.
        """
        label_set = LabelSet.of(labels)
        index = {name: i for i, name in enumerate(label_set.names)}
        shots: list[tuple[str, int]] = []
        for text, label in options.examples:
            if label not in index:
                raise ValueError(f"example label {label!r} is not one of {label_set.names!r}")
            shots.append((text, index[label]))
        return cls(label_set, model, key, options, tuple(shots), as_trained)

    @classmethod
    def build(
        cls,
        labels: LabelsInput | LabelSet,
        model: str,
        key: CapabilityKey | tuple[str, str],
        **options: Unpack[ClassifyKwargs],
    ) -> Spec:
        """:meth:`of` from the keywords of :class:`ClassifyKwargs` (checked as the entry points
        check them).

        ``key`` may be a bare (endpoint, model) pair: the spec then remembers nothing beyond
        itself (pure request building, as in tests of the batch input files).
        """
        if isinstance(key, tuple):
            key = CapabilityKey(Capabilities(), *key)
        return cls.of(labels, model, key, ClassifyOptions.from_kwargs("Spec.build()", options))

    @property
    def encoding_model(self) -> str:
        """The model whose token encoding to use: ``base_model`` when given, else ``model``."""
        return self.options.base_model or self.model

    def plan(self) -> KeyPlan:
        """The tokens to bias, computed on first need (it loads the model's encoding)."""
        if self._plan is None:
            self._plan = plan_for(self.labels.names, self.encoding_model)
        return self._plan

    def usable(self, technique: Technique, refused: frozenset[str] | set[str]) -> bool:
        """Whether ``technique`` can work with what the endpoint refused."""
        if technique == "logit_bias":
            no_cap = {"max_tokens", "max_completion_tokens"} <= refused
            if "logit_bias" in refused or no_cap:
                return False
            return not (self.as_trained and self.plan().aliased)
        if technique == "structured":
            return "response_format" not in refused
        return True

    def next_technique(
        self, refused: frozenset[str] | set[str], after: Technique | None = None
    ) -> Technique | None:
        """The technique to try: the forced one while usable, else the first usable rung."""
        if self.options.technique != "auto":
            return self.options.technique if self.usable(self.options.technique, refused) else None
        start = 0 if after is None else LADDER.index(after) + 1
        return next((t for t in LADDER[start:] if self.usable(t, refused)), None)

    def start(self) -> tuple[Technique, set[str]]:
        """The technique a call begins with, and the refusals it starts from.

        ``auto`` starts on the highest rung the endpoint has not refused. A forced technique is
        tried even if it was refused before (the caller asked for it; endpoints change), but
        still without the other parameters the endpoint refused.
        """
        refused = set(known_refusals(self.key))
        if self.options.technique != "auto":
            refused -= _TECHNIQUE_PARAMS[self.options.technique]
            return self.options.technique, refused
        return self.next_technique(refused) or "prompt", refused

    def may_need_plan(self) -> bool:
        """True when the call may bias tokens (and so load the model's encoding)."""
        return self.options.technique in (
            "auto",
            "logit_bias",
        ) and "logit_bias" not in known_refusals(self.key)

    def messages(self, technique: Technique, text: TextInput) -> list[dict[str, Any]]:
        """System prompt, few-shot turns, then the text (as trained: the text alone)."""
        if self.as_trained:
            turns = user_turns(text)
            return with_label_rule(turns, self.labels) if technique == "prompt" else turns
        plan = self.plan() if technique == "logit_bias" else None
        aliases = plan.keys if plan is not None and plan.aliased else None
        system = system_prompt(technique, self.labels, aliases, self.options.instructions)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for shot_text, index in self.shots:
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
            body["response_format"] = structured_format(self.labels)
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
        threshold = self.options.abstain_below
        if threshold is not None and confidence is not None and confidence < threshold:
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
        if self.options.abstain_below is not None:
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


def prepare_call(
    call: Call[ClientT], resolve: Callable[[ClientT | None, str], ClientT]
) -> tuple[ClientT, Spec]:
    """The client and the spec of one call, after the checks every entry point shares.

    ``resolve`` is ``sync_client`` or ``async_client`` (given the call's client and entry
    point): it runs after ``model`` and ``retry`` are checked, so an argument error names the
    argument before a client is built from the environment.

    Raises:
        TypeError: ``model``, ``retry`` or the client (from ``resolve``) has the wrong type.
        ValueError: a blank ``model``; an example whose label is not one of ``labels``.
    """
    check_model(call.model)
    check_retry(call.retry)
    resolved = resolve(call.client, call.where)
    key = capability_key(resolved, call.model)
    spec = Spec.of(call.labels, call.model, key, call.options, as_trained=call.as_trained)
    return resolved, spec


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
    reasks = spec.options.reasks
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
                if spec.usable(technique, refused):
                    continue
                nxt = spec.next_technique(refused, after=technique)
                if nxt is None:
                    raise
                technique = nxt
                messages = spec.messages(technique, text)
                continue
        tally.add(completion)
        answer = spec.read(technique, completion)
        if answer.index is not None:
            if technique == "logit_bias":
                note_followed_bias(spec.key)
            mark_settled(spec.key)
            return spec.result(technique, answer, tally.usage())
        if technique == "logit_bias" and spec.options.technique == "auto":
            # With +100 on every label token, a reply starting no label means the endpoint
            # ignores logit_bias (or spends the one token on reasoning). This call moves down
            # a rung; the client remembers it only after repeated evidence.
            convinced = note_off_label(spec.key)
            logger.warning(
                "%s did not follow logit_bias (answered %r); %s",
                spec.model,
                answer.raw,
                "not using logit_bias with it any more"
                if convinced
                else "using the next technique for this text",
            )
            refused.add("logit_bias")
            technique = spec.next_technique(refused, after="logit_bias") or "prompt"
            messages = spec.messages(technique, text)
            continue
        if technique == "prompt" and reasks > 0 and answer.raw is not None:
            reasks -= 1
            messages = [
                *messages,
                {"role": "assistant", "content": answer.raw},
                {"role": "user", "content": answer_rule("prompt", spec.labels, None)},
            ]
            continue
        return spec.unanswered(technique, answer, tally.usage())


async def plan_off_loop(spec: Spec) -> None:
    """Compute ``spec``'s token plan on a worker thread when it is not cached yet."""
    # Loading an encoding takes 0.5-0.9 s of CPU: on the loop's thread it would stall every
    # other task. Only the first call per labels and model pays the thread hop.
    if spec.may_need_plan() and (cached_plan(spec.labels.names, spec.encoding_model) is None):
        await asyncio.to_thread(spec.plan)
