"""``POST /chat/completions``: parameter checks, the model's candidates, the response body.

Tuned models answer among the answers they were trained on, weighted by their learned
distribution. Base models answer among the labels the prompt lists (``A: label`` alias lines,
"one of: x, y, z" lists, bullet lines, or a json_schema ``enum``), scored by the weak
:func:`~finetune_kit.local._trainer.base_scores`; with no such list they give a fixed reply.
Token-level behaviour (logit_bias, logprobs, max tokens) is in :mod:`._chat`.

Reasoning models (``o1*``, ``o3*``, ``o4-mini*`` and models tuned from them) refuse
``logit_bias``, ``logprobs``/``top_logprobs`` and ``max_tokens`` with the service's 400
``unsupported_parameter``, and ``temperature`` other than 1 with ``unsupported_value``; they
spend ``REASONING_TOKENS`` hidden tokens before answering, counted in
``max_completion_tokens`` and in ``usage.completion_tokens_details.reasoning_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
from typing import TYPE_CHECKING, Any, Final

from ..facts._tokens import TokenCounter, encoding_for_model
from ._chat import (
    FLOOR_LOGIT,
    Candidate,
    Generated,
    enum_schema,
    find_aliases,
    find_listed_labels,
    generate,
)
from ._errors import ApiError, bad_request, integer
from ._models import is_reasoning_model
from ._trainer import base_scores, content_text, context_text

if TYPE_CHECKING:
    import tiktoken

    from ._models import Models
    from ._trainer_types import AnswerModel

__all__ = ["BASE_REPLY", "REASONING_TOKENS", "create_chat_completion"]

#: What a base model says when the prompt lists no labels to choose from.
BASE_REPLY: Final = "I am a base model on the finetune_kit local backend."
#: Hidden tokens a reasoning model spends before its answer.
REASONING_TOKENS: Final = 8
_NOT_AN_ANSWER: Final = -12.0


def _unsupported(param: str, message: str, code: str = "unsupported_parameter") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _check_reasoning(body: dict[str, Any]) -> None:
    for param in ("logit_bias", "logprobs", "top_logprobs", "max_tokens"):
        if body.get(param) is not None and body.get(param) is not False:
            hint = " Use 'max_completion_tokens' instead." if param == "max_tokens" else ""
            raise _unsupported(
                param,
                f"Unsupported parameter: '{param}' is not supported with this model.{hint}",
            )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise _unsupported(
            "temperature",
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported.",
            code="unsupported_value",
        )


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(
            f"Invalid '{key}': expected a number between {low:g} and {high:g}.",
            param=key,
            code="invalid_value",
        )
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(
            f"Invalid '{key}': expected an integer between {low} and {high}.",
            param=key,
            code="invalid_value",
        )
    return value


def _logit_bias(body: dict[str, Any], enc: tiktoken.Encoding) -> dict[int, float]:
    raw = body.get("logit_bias")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request("Invalid 'logit_bias': expected an object.", param="logit_bias")
    bias: dict[int, float] = {}
    for key, value in raw.items():
        message = f"Invalid key in 'logit_bias': {key!r} is not a token id."
        token = integer(key, message, param="logit_bias")
        if not 0 <= token < enc.n_vocab:
            raise bad_request(
                f"Invalid key in 'logit_bias': {token}. Maximum value for token ids is "
                f"{enc.n_vocab - 1}.",
                param="logit_bias",
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool) or abs(value) > 100:
            raise bad_request(
                f"Invalid value for 'logit_bias' key {key}: must be between -100 and 100.",
                param="logit_bias",
            )
        bias[token] = float(value)
    return bias


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("Missing required parameter: 'messages'.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(
                f"Invalid 'messages[{i}]': expected an object with a 'role'.",
                param=f"messages[{i}]",
            )
    return messages


def _candidates(
    weights: AnswerModel | None,
    messages: list[dict[str, Any]],
    enum: list[str] | None,
    bias: dict[int, float],
    enc: tiktoken.Encoding,
) -> list[Candidate]:
    prompt = context_text(messages)
    aliases = find_aliases(prompt)
    texts: list[str]
    logits: list[float]
    if weights is not None:
        probs = weights.probabilities(prompt)
        learned = {a: math.log(max(p, 1e-300)) for a, p in zip(weights.answers, probs, strict=True)}
        if enum is None:
            texts, logits = list(learned), list(learned.values())
        else:
            folded = {a.casefold(): lp for a, lp in learned.items()}
            texts = list(enum)
            logits = [learned.get(v, folded.get(v.casefold(), _NOT_AN_ANSWER)) for v in enum]
    else:
        users = [m for m in messages if m.get("role") == "user"]
        question = content_text(users[-1].get("content")) if users else prompt
        if enum is not None:
            texts = list(enum)
        elif aliases:
            texts = list(dict.fromkeys(aliases.values()))
        else:
            texts = find_listed_labels(prompt)
        if not texts:
            # Nothing listed: the restricted tokens themselves are what the base can say.
            texts = [enc.decode([t]) for t, b in sorted(bias.items()) if b > 0] or [BASE_REPLY]
        logits = base_scores(question, texts)
    by_label: dict[str, list[str]] = {}
    for alias, label in aliases.items():
        by_label.setdefault(label.casefold(), []).append(alias)
    return [
        Candidate(text, logit, tuple(by_label.get(text.casefold(), ())))
        for text, logit in zip(texts, logits, strict=True)
        if logit > FLOOR_LOGIT
    ]


def _logprob_entry(token: int, logprob: float, enc: tiktoken.Encoding) -> dict[str, Any]:
    raw = enc.decode_single_token_bytes(token)
    return {
        "token": raw.decode("utf-8", errors="replace"),
        "bytes": list(raw),
        "logprob": logprob,
    }


def _choice(
    index: int, out: Generated, enc: tiktoken.Encoding, want_logprobs: bool
) -> dict[str, Any]:
    logprobs = None
    if want_logprobs:
        logprobs = {
            "content": [
                {
                    **_logprob_entry(c.token, c.logprob, enc),
                    "top_logprobs": [_logprob_entry(t, lp, enc) for t, lp in c.top],
                }
                for c in out.tokens
            ],
            "refusal": None,
        }
    return {
        "index": index,
        "message": {
            "role": "assistant",
            "content": out.text,
            "refusal": None,
            "annotations": [],
        },
        "logprobs": logprobs,
        "finish_reason": out.finish_reason,
    }


def create_chat_completion(models: Models, body: dict[str, Any]) -> dict[str, Any]:
    """Answer one chat completion request body (also used for batch lines)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("Missing required parameter: 'model'.", param="model")
    messages = _messages(body)
    name, weights = models.resolve(model)
    reasoning = is_reasoning_model(name)
    if reasoning:
        _check_reasoning(body)
    if body.get("stream"):
        raise bad_request(
            "The local backend does not stream; leave 'stream' unset.", param="stream"
        )
    enc = encoding_for_model(name)
    n = _integer(body, "n", 1, 128) or 1
    temperature = _number(body, "temperature", 0, 2)
    seed = _integer(body, "seed", -(2**63), 2**63 - 1)
    max_tokens = _integer(body, "max_tokens", 1, 1_000_000)
    max_completion = _integer(body, "max_completion_tokens", 1, 1_000_000)
    want_logprobs = bool(body.get("logprobs"))
    top = _integer(body, "top_logprobs", 0, 20) or 0
    if top and not want_logprobs:
        raise bad_request(
            "Invalid 'top_logprobs': 'logprobs' must be true when it is set.",
            param="top_logprobs",
        )
    bias = _logit_bias(body, enc)
    response_format = body.get("response_format")
    schema = enum_schema(response_format)
    prop: str | None = None
    enum: list[str] | None = None
    if schema is not None:
        prop, enum = schema
    elif isinstance(response_format, dict) and response_format.get("type") == "json_object":
        prop = "answer"
    cap = max_completion if max_completion is not None else max_tokens
    hidden = REASONING_TOKENS if reasoning else 0
    visible_cap = None if cap is None else cap - hidden
    if seed is None:
        # Without a seed the service samples at random; here identical requests answer
        # identically, so test runs repeat (n > 1 choices still differ from each other).
        seed = int(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16], 16)
    rng = random.Random(seed)
    candidates = _candidates(weights, messages, enum, bias, enc)
    choices = []
    completion_tokens = 0
    for i in range(n):
        if visible_cap is not None and visible_cap <= 0:
            out = Generated(tokens=[], text="", finish_reason="length")
        else:
            out = generate(
                candidates,
                enc=enc,
                logit_bias=bias,
                max_tokens=visible_cap,
                temperature=1.0 if temperature is None else temperature,
                rng=rng,
                top_logprobs=top,
                json_property=prop,
            )
        completion_tokens += len(out.tokens) + hidden
        choices.append(_choice(i, _apply_stop(out, body.get("stop")), enc, want_logprobs))
    prompt_tokens = TokenCounter(enc).messages(messages)[0]
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(models.now()),
        "model": name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": hidden * n,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_finetune_kit_local",
    }


def _apply_stop(out: Generated, stop: Any) -> Generated:
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cut = min((out.text.find(s) for s in stops if isinstance(s, str) and s in out.text), default=-1)
    if cut < 0:
        return out
    return Generated(tokens=out.tokens, text=out.text[:cut], finish_reason="stop")
