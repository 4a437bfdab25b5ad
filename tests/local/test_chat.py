"""Chat completions on the local backend: what classify() relies on, exactly."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import openai
import pytest

from finetune_kit.facts._tokens import encoding_for_model
from finetune_kit.local import LocalServer, ManualClock

from .helpers import LABELS, SYSTEM, chat_line, demo_rows, jsonl, upload

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

ENC = encoding_for_model("gpt-4o-mini")
SENTIMENT = "Classify the sentiment. Answer with one of: positive, negative, neutral"
ALIASES = "Classify the topic. Answer with the letter.\nA: ai\nB: coding\nC: trivia"


def tok(text: str) -> int:
    (token,) = ENC.encode(text)
    return token


def first(text: str) -> str:
    """The first token of ``text``, as a string."""
    return ENC.decode(ENC.encode(text)[:1])


def _wait_job(client: openai.OpenAI, job_id: str, clock: ManualClock) -> str:
    clock.advance(3600)  # far past any small job's end
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model
    return job.fine_tuned_model


@pytest.fixture(scope="module")
def mclock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def server(mclock: ManualClock) -> Iterator[LocalServer]:
    with LocalServer(clock=mclock, in_process=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def tuned(server: LocalServer, mclock: ManualClock) -> str:
    """A model tuned on 200 demo rows (module-wide: training once is enough)."""
    client = server.client(max_retries=0)
    rows = demo_rows()[::2][:200]
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=upload(client, jsonl([chat_line(t, label) for t, label in rows])),
        suffix="chat",
        seed=0,  # the tests below expect this model's answers: keep its training fixed
    )
    return _wait_job(client, job.id, mclock)


@pytest.fixture
def client(server: LocalServer) -> openai.OpenAI:
    return server.client(max_retries=0)


def _msgs(system: str, user: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _top(reply: Any) -> dict[str, float]:
    return {t.token: t.logprob for t in reply.choices[0].logprobs.content[0].top_logprobs}


def test_base_model_answers_one_of_the_listed_labels_deterministically(
    client: openai.OpenAI,
) -> None:
    answers = {
        client.chat.completions.create(
            model="gpt-4o-mini", messages=_msgs(SENTIMENT, "I loved it"), temperature=0
        )
        .choices[0]
        .message.content
        for _ in range(3)
    }
    assert len(answers) == 1
    assert answers <= {"positive", "negative", "neutral"}


def test_logit_bias_plus_100_restricts_the_first_token(client: openai.OpenAI) -> None:
    for label in ("positive", "negative", "neutral"):
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=_msgs(SENTIMENT, "whatever"),
            logit_bias={str(tok(label)): 100},
            max_tokens=1,
            logprobs=True,
            top_logprobs=3,
        )
        choice = reply.choices[0]
        assert choice.message.content == label
        assert choice.logprobs is not None
        assert choice.logprobs.content is not None
        assert choice.logprobs.content[0].logprob == pytest.approx(0.0, abs=1e-9)


def test_logit_bias_minus_100_bans(client: openai.OpenAI) -> None:
    base = client.chat.completions.create(
        model="gpt-4o-mini", messages=_msgs(SENTIMENT, "meh"), temperature=0
    )
    first = str(base.choices[0].message.content)
    banned = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=_msgs(SENTIMENT, "meh"),
        temperature=0,
        logit_bias={str(tok(first)): -100},
    )
    assert banned.choices[0].message.content in {"positive", "negative", "neutral"} - {first}


def test_aliases_carry_the_label_probabilities(client: openai.OpenAI, tuned: str) -> None:
    def biased(tokens: Iterable[str], top: int) -> ChatCompletion:
        return client.chat.completions.create(
            model=tuned,
            messages=_msgs(ALIASES, "can you write a merge sort in python?"),
            max_tokens=1,
            logprobs=True,
            top_logprobs=top,
            logit_bias={str(tok(t)): 100 for t in tokens},
            temperature=0,
        )

    plain = biased(("ai", "coding", first("trivia")), 10)
    aliased = biased("ABC", 3)
    assert aliased.choices[0].message.content == "B"
    by_label = _top(plain)
    by_alias = _top(aliased)
    assert set(by_alias) == {"A", "B", "C"}
    for alias, first_token in zip("ABC", ("ai", "coding", first("trivia")), strict=True):
        assert by_alias[alias] == pytest.approx(by_label[first_token], abs=1e-3)


def test_logprobs_are_a_distribution_with_token_bytes(client: openai.OpenAI, tuned: str) -> None:
    reply = client.chat.completions.create(
        model=tuned,
        messages=_msgs(SYSTEM, "Who was the first man on the moon?"),
        logprobs=True,
        top_logprobs=20,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.message.content == "trivia"
    assert choice.logprobs is not None
    assert choice.logprobs.content is not None
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == "trivia"
    for entry in tokens:
        assert entry.bytes == list(entry.token.encode())
    top = tokens[0].top_logprobs
    assert top[0].token == tokens[0].token
    assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
    assert sum(math.exp(t.logprob) for t in top) == pytest.approx(1.0, abs=1e-6)
    assert {t.token for t in top} == {first(label) for label in LABELS}


def test_max_tokens_truncates_with_finish_reason_length(client: openai.OpenAI, tuned: str) -> None:
    messages = _msgs(SYSTEM, "What is the capital of France?")
    full = client.chat.completions.create(model=tuned, messages=messages, temperature=0)
    assert full.choices[0].message.content == "trivia"
    assert full.choices[0].finish_reason == "stop"
    assert full.usage is not None
    assert full.usage.completion_tokens == 2
    cut = client.chat.completions.create(
        model=tuned, messages=messages, temperature=0, max_tokens=1
    )
    assert cut.choices[0].message.content == first("trivia")
    assert cut.choices[0].finish_reason == "length"
    cut2 = client.chat.completions.create(
        model=tuned, messages=messages, temperature=0, max_completion_tokens=1
    )
    assert cut2.choices[0].finish_reason == "length"


def test_json_schema_enum(client: openai.OpenAI, tuned: str) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(LABELS)}},
        "required": ["label"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=tuned,
        messages=_msgs(SYSTEM, "can you write a binary search in java?"),
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "topic", "schema": schema, "strict": True},
        },
    )
    assert json.loads(str(reply.choices[0].message.content)) == {"label": "coding"}
    base = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=_msgs("Which colour?", "the sky"),
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "colour",
                "schema": {
                    "type": "object",
                    "properties": {"colour": {"type": "string", "enum": ["red", "blue"]}},
                },
                "strict": True,
            },
        },
    )
    assert json.loads(str(base.choices[0].message.content))["colour"] in ("red", "blue")


def test_n_seed_and_temperature(client: openai.OpenAI, tuned: str) -> None:
    messages = _msgs(SYSTEM, "you are a strange one")

    def answers(**options: Any) -> list[str | None]:
        reply = client.chat.completions.create(model=tuned, messages=messages, n=8, **options)
        assert [c.index for c in reply.choices] == list(range(8))
        return [c.message.content for c in reply.choices]

    assert answers(seed=1, temperature=1.5) == answers(seed=1, temperature=1.5)
    greedy = answers(temperature=0)
    assert len(set(greedy)) == 1
    hot = answers(seed=3, temperature=2.0) + answers(seed=4, temperature=2.0)
    assert len(set(hot)) > 1  # sampling at a high temperature varies the answer


def test_usage_counts_prompt_tokens_with_the_encoding(client: openai.OpenAI) -> None:
    messages = _msgs(SENTIMENT, "I loved it")
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    expected = 3 + sum(
        3 + len(ENC.encode(str(m["role"]))) + len(ENC.encode(str(m.get("content"))))
        for m in messages
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == expected
    assert reply.usage.total_tokens == expected + reply.usage.completion_tokens
    assert reply.model == "gpt-4o-mini"
    assert reply.id.startswith("chatcmpl-")


@pytest.mark.parametrize(
    ("options", "param", "code"),
    [
        ({"logit_bias": {"32": 100}}, "logit_bias", "unsupported_parameter"),
        ({"logprobs": True}, "logprobs", "unsupported_parameter"),
        ({"max_tokens": 5}, "max_tokens", "unsupported_parameter"),
        ({"temperature": 0}, "temperature", "unsupported_value"),
    ],
)
@pytest.mark.parametrize("model", ["o4-mini", "o3-mini", "o1"])
def test_reasoning_models_refuse(
    client: openai.OpenAI, model: str, options: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=_msgs(SENTIMENT, "x"), **options)
    assert info.value.status_code == 400
    assert info.value.code == code
    assert info.value.param == param
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "invalid_request_error"


def test_reasoning_models_spend_hidden_tokens(client: openai.OpenAI) -> None:
    ok = client.chat.completions.create(
        model="o4-mini", messages=_msgs(SENTIMENT, "great"), max_completion_tokens=100
    )
    assert ok.choices[0].message.content in ("positive", "negative", "neutral")
    assert ok.usage is not None
    assert ok.usage.completion_tokens_details is not None
    assert ok.usage.completion_tokens_details.reasoning_tokens == 8
    starved = client.chat.completions.create(
        model="o4-mini", messages=_msgs(SENTIMENT, "great"), max_completion_tokens=5
    )
    assert starved.choices[0].message.content == ""
    assert starved.choices[0].finish_reason == "length"


def test_rft_tuned_reasoning_model_inherits_refusals(
    server: LocalServer, mclock: ManualClock
) -> None:
    client = server.client(max_retries=0)
    lines = [
        {"messages": [{"role": "user", "content": text}], "label": label}
        for text, label in demo_rows()[::10]
    ]
    job = client.fine_tuning.jobs.create(
        model="o4-mini",
        training_file=upload(client, jsonl(lines)),
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": {
                    "type": "string_check",
                    "name": "exact",
                    "input": "{{sample.output_text}}",
                    "reference": "{{ item.label }}",
                    "operation": "eq",
                }
            },
        },
    )
    model = _wait_job(client, job.id, mclock)
    assert model.startswith("ft:o4-mini:local::")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=model, messages=_msgs(SYSTEM, "x"), logit_bias={"32": 100}
        )
    assert info.value.code == "unsupported_parameter"
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "can you write a heap sort?"}]
    )
    assert reply.choices[0].message.content in LABELS


def test_unknown_and_deleted_models(client: openai.OpenAI, mclock: ManualClock) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="ft:gpt-4o-mini:x::y", messages=_msgs("a", "b"))
    assert info.value.code == "model_not_found"
    rows = demo_rows()[:20]
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=upload(client, jsonl([chat_line(t, label) for t, label in rows])),
    )
    model = _wait_job(client, job.id, mclock)
    assert client.models.delete(model).deleted
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=model, messages=_msgs("a", "b"))
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("gpt-4o-mini")


def test_local_models_never_retire(client: openai.OpenAI, tuned: str) -> None:
    # The backend's models are its own, not OpenAI's: OpenAI's retirement dates (2027-01-14
    # for gpt-4o-mini, 2026-10-23 for gpt-4.1-nano) do not apply to them.
    assert client.models.retrieve("gpt-4o-mini").shutdown_date is None
    assert client.models.retrieve("gpt-4.1-nano").shutdown_date is None
    assert client.models.retrieve(tuned).shutdown_date is None
    assert client.models.retrieve(tuned).owned_by == "local"
    assert all(m.shutdown_date is None for m in client.models.list())
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids
    assert tuned in ids
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_invalid_parameters_are_400(client: openai.OpenAI) -> None:
    cases: list[dict[str, Any]] = [
        {"logit_bias": {"abc": 1}},
        {"logit_bias": {"32": 500}},
        {"temperature": 3},
        {"n": 0},
        {"top_logprobs": 3},
    ]
    for options in cases:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=_msgs(SENTIMENT, "x"), **options
            )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])


def test_identical_requests_answer_identically_without_a_seed(
    client: openai.OpenAI, tuned: str
) -> None:
    def ask() -> list[str | None]:
        reply = client.chat.completions.create(
            model=tuned, messages=_msgs(SYSTEM, "you are odd"), n=6, temperature=2.0
        )
        return [c.message.content for c in reply.choices]

    assert ask() == ask()
