"""classify(): each rung of the ladder, with the requests inspected."""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from finetune_kit import Classification, ClassificationError, RetryPolicy, aclassify, classify
from finetune_kit.classification._capabilities import capabilities
from finetune_kit.classification._classify import (
    LabelSet,
    capability_key,
    match_label,
    plan_keys,
)

from .fake_openai import bodies, ok, refused, system_prompt

if TYPE_CHECKING:
    import respx

SENTIMENT = ["positive", "negative", "neutral"]
TOP = [("positive", math.log(0.6)), ("negative", math.log(0.3)), ("neutral", math.log(0.05))]


pytestmark = pytest.mark.usefixtures("fresh_capabilities")


# --- Rung 1: logit_bias ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "token_ids"),
    [
        # o200k_base: the encoding of the gpt-4o / gpt-4.1 families.
        ("gpt-4o-mini", {"46914": 100, "46069": 100, "117131": 100}),
        # cl100k_base: gpt-3.5-turbo and gpt-4.
        ("gpt-3.5-turbo", {"31587": 100, "43324": 100, "60668": 100}),
        # tiktoken maps ft:gpt-4.1-mini names to cl100k; the base decides: o200k.
        (
            "ft:gpt-4.1-mini-2025-04-14:acme:sentiment:AbC123",
            {"46914": 100, "46069": 100, "117131": 100},
        ),
    ],
)
def test_logit_bias_request_uses_the_models_own_encoding(
    api: respx.Router, client: openai.OpenAI, model: str, token_ids: dict[str, int]
) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("positive", top=TOP))

    result = classify("I love it", labels=SENTIMENT, model=model, client=client)

    (body,) = bodies(route)
    assert body["model"] == model
    assert body["logit_bias"] == token_ids
    assert body["max_tokens"] == 1
    assert "max_completion_tokens" not in body
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 3
    assert body["temperature"] == 0
    assert body["messages"] == [
        {
            "role": "system",
            "content": "Classify the text.\n"
            "Reply with only one of these labels: positive, negative, neutral",
        },
        {"role": "user", "content": "I love it"},
    ]
    assert result.label == "positive"
    assert result.technique == "logit_bias"


def test_probabilities_are_renormalised_over_the_labels(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(
        return_value=ok("negative", top=[*TOP, ("The", math.log(0.05))])
    )

    result = classify("meh", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    assert result.label == "negative"
    assert result.probabilities is not None
    assert result.probabilities["positive"] == pytest.approx(0.6 / 0.95)
    assert result.probabilities["negative"] == pytest.approx(0.3 / 0.95)
    assert result.probabilities["neutral"] == pytest.approx(0.05 / 0.95)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.probability_outside == pytest.approx(0.05)
    # The model's choice is returned, even where another label was likelier.
    assert result.confidence == pytest.approx(0.3 / 0.95)
    assert result.usage.prompt_tokens == 20
    assert result.usage.completion_tokens == 1
    assert result.usage.total_tokens == 21
    assert result.usage.requests == 1


def test_labels_missing_from_top_logprobs_get_zero(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(
        return_value=ok("positive", top=[("positive", math.log(0.8))])
    )

    result = classify("great", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    assert result.probabilities == {"positive": 1.0, "negative": 0.0, "neutral": 0.0}
    assert result.probability_outside == pytest.approx(0.2)


def test_abstains_below_the_threshold_but_keeps_the_distribution(
    api: respx.Router, client: openai.OpenAI
) -> None:
    top = [("positive", math.log(0.55)), ("negative", math.log(0.45))]
    api.post("/chat/completions").mock(return_value=ok("positive", top=top))

    result = classify(
        "hmm", labels=SENTIMENT, model="gpt-4o-mini", client=client, abstain_below=0.6
    )

    assert result.label is None
    assert result.abstained
    assert result.confidence == pytest.approx(0.55)
    assert result.probabilities is not None
    assert result.probabilities["positive"] == pytest.approx(0.55)


def test_confident_answer_is_kept_with_a_threshold(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(return_value=ok("positive", top=TOP))

    result = classify(
        "yes", labels=SENTIMENT, model="gpt-4o-mini", client=client, abstain_below=0.6
    )

    assert result.label == "positive"
    assert not result.abstained


def test_colliding_first_tokens_use_single_token_aliases(
    api: respx.Router, client: openai.OpenAI
) -> None:
    labels = ["New York", "New Jersey", "Boston"]  # "New" starts two of them
    top = [("A", math.log(0.2)), ("B", math.log(0.7)), ("C", math.log(0.1))]
    route = api.post("/chat/completions").mock(return_value=ok("B", top=top))

    result = classify("Newark airport", labels=labels, model="gpt-4o-mini", client=client)

    (body,) = bodies(route)
    assert body["logit_bias"] == {"32": 100, "33": 100, "34": 100}  # A, B, C in o200k_base
    assert system_prompt(body) == (
        "Classify the text.\n"
        "Reply with only the letter of one label:\nA: New York\nB: New Jersey\nC: Boston"
    )
    assert result.label == "New Jersey"
    assert result.raw_output == "B"
    assert result.probabilities == pytest.approx(
        {"New York": 0.2, "New Jersey": 0.7, "Boston": 0.1}
    )


def test_many_colliding_labels_get_number_aliases() -> None:
    names = tuple(f"topic {i}" for i in range(30))

    plan = plan_keys(names, "cl100k_base")

    assert plan.aliased
    assert plan.keys == tuple(str(i) for i in range(1, 31))
    assert len(set(plan.token_ids)) == 30
    assert plan.token_ids[:3] == (16, 17, 18)  # "1", "2", "3" in cl100k_base


def test_distinct_first_tokens_need_no_aliases() -> None:
    plan = plan_keys(("positive", "negative", "neutral"), "o200k_base")

    assert not plan.aliased
    assert plan.keys == ("positive", "negative", "neutral")


def test_max_completion_tokens_fallback_is_remembered(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("max_tokens"), ok("neutral", top=TOP), ok("neutral", top=TOP)]
    )

    first = classify("ok", labels=SENTIMENT, model="o-reasoner", client=client, base_model="o3")
    second = classify("ok", labels=SENTIMENT, model="o-reasoner", client=client, base_model="o3")

    refused_body, retried, later = bodies(route)
    assert refused_body["max_tokens"] == 1
    assert "max_tokens" not in retried
    assert retried["max_completion_tokens"] == 1
    assert retried["logit_bias"] == refused_body["logit_bias"]
    # Remembered for the endpoint and model: the next call does not ask again.
    assert "max_tokens" not in later
    assert later["max_completion_tokens"] == 1
    assert first.label == second.label == "neutral"
    assert first.usage.requests == 1


def test_refused_temperature_and_logprobs_are_dropped(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            refused(
                "temperature",
                code="unsupported_value",
                message="Unsupported value: 'temperature' does not support 0 with this model.",
            ),
            refused("logprobs"),
            ok("positive"),
        ]
    )

    result = classify("good", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    first, second, third = bodies(route)
    assert first["temperature"] == 0
    assert "temperature" not in second
    assert second["logprobs"] is True
    assert "logprobs" not in third
    assert "top_logprobs" not in third
    assert third["logit_bias"] == first["logit_bias"]
    # Without logprobs the label still comes from the one biased token; no distribution.
    assert result.label == "positive"
    assert result.technique == "logit_bias"
    assert result.probabilities is None
    assert result.confidence is None


# --- Rung 2: structured outputs --------------------------------------------------------------


STRICT_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "classification",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": SENTIMENT}},
            "required": ["label"],
            "additionalProperties": False,
        },
    },
}


def test_refused_logit_bias_moves_to_strict_structured_outputs_once(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            refused("logit_bias"),
            ok('{"label":"negative"}', completion_tokens=6),
            ok('{"label":"neutral"}', completion_tokens=6),
        ]
    )

    first = classify("bad", labels=SENTIMENT, model="gpt-4o-mini", client=client)
    second = classify("fine", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    refused_body, structured, remembered = bodies(route)
    assert "logit_bias" in refused_body
    assert structured["response_format"] == STRICT_SCHEMA
    for key in ("logit_bias", "logprobs", "top_logprobs", "max_tokens"):
        assert key not in structured
    assert system_prompt(structured) == "Classify the text.\nLabels: positive, negative, neutral"
    assert remembered["response_format"] == STRICT_SCHEMA  # no second refusal
    assert (first.label, first.technique) == ("negative", "structured")
    assert (second.label, second.technique) == ("neutral", "structured")
    assert first.probabilities is None
    assert first.confidence is None


def test_logit_bias_key_outside_the_vocabulary_also_moves_down(
    api: respx.Router, client: openai.OpenAI
) -> None:
    # What OpenAI answers when the token ids do not exist for the model (code is null).
    invalid = refused(
        "logit_bias", code=None, message="Invalid key in 'logit_bias': 117131. Maximum is 100257."
    )
    api.post("/chat/completions").mock(side_effect=[invalid, ok('{"label":"neutral"}')])

    result = classify(
        "x", labels=SENTIMENT, model="my-deployment", client=client, base_model="gpt-4o"
    )

    assert result.technique == "structured"
    assert result.label == "neutral"


def test_endpoint_ignoring_logit_bias_is_detected(
    api: respx.Router, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[ok("The", top=[("The", -0.1)]), ok('{"label":"positive"}')]
    )

    result = classify("nice", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    assert result.label == "positive"
    assert result.technique == "structured"
    assert [("logit_bias" in b, "response_format" in b) for b in bodies(route)] == [
        (True, False),
        (False, True),
    ]
    assert "did not follow logit_bias" in caplog.text
    assert result.usage.requests == 2


def test_forced_logit_bias_never_returns_an_unchosen_label(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(return_value=ok("The", top=[("The", -0.1)]))

    with pytest.raises(ClassificationError) as info:
        classify(
            "nice", labels=SENTIMENT, model="gpt-4o-mini", client=client, technique="logit_bias"
        )

    assert info.value.raw_output == "The"
    assert info.value.labels == tuple(SENTIMENT)


def test_forced_technique_refused_raises_the_sdk_error(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(return_value=refused("logit_bias"))

    with pytest.raises(openai.BadRequestError):
        classify("x", labels=SENTIMENT, model="gpt-4o-mini", client=client, technique="logit_bias")

    assert route.call_count == 1


def test_structured_answer_outside_the_enum_is_an_error(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(return_value=ok('{"label":"mixed"}'))

    with pytest.raises(ClassificationError) as info:
        classify("x", labels=SENTIMENT, model="gpt-4o-mini", client=client, technique="structured")

    assert info.value.raw_output == '{"label":"mixed"}'


def test_model_refusal_abstains_when_allowed(api: respx.Router, client: openai.OpenAI) -> None:
    api.post("/chat/completions").mock(return_value=ok(None, refusal="I can't help with that."))

    result = classify(
        "x",
        labels=SENTIMENT,
        model="gpt-4o-mini",
        client=client,
        technique="structured",
        abstain_below=0.5,
    )

    assert result.label is None
    assert result.raw_output == "I can't help with that."


# --- Rung 3: prompt and check ----------------------------------------------------------------


def test_structured_refused_too_falls_back_to_prompt(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("logit_bias"), refused("response_format"), ok("neutral")]
    )

    result = classify("so so", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    prompt_body = bodies(route)[2]
    assert "response_format" not in prompt_body
    assert prompt_body["max_tokens"] == len("positive") + 8
    assert system_prompt(prompt_body) == (
        "Classify the text.\nReply with only one of these labels: positive, negative, neutral"
    )
    assert (result.label, result.technique) == ("neutral", "prompt")


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("negative", "negative"),
        ("  Negative.\n", "negative"),
        ("NEUTRAL", "neutral"),
        ('"positive"', "positive"),
    ],
)
def test_prompt_answers_match_exactly_then_loosely(
    api: respx.Router, client: openai.OpenAI, answer: str, label: str
) -> None:
    api.post("/chat/completions").mock(return_value=ok(answer))

    result = classify("x", labels=SENTIMENT, model="gpt-4o-mini", client=client, technique="prompt")

    assert result.label == label
    assert result.usage.requests == 1


def test_prompt_reasks_a_bounded_number_of_times(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("It is mostly upbeat."))

    with pytest.raises(ClassificationError) as info:
        classify(
            "x", labels=SENTIMENT, model="gpt-4o-mini", client=client, technique="prompt", reasks=2
        )

    sent = bodies(route)
    assert len(sent) == 3  # the question and two re-asks
    last = sent[-1]["messages"]
    assert last[-2] == {"role": "assistant", "content": "It is mostly upbeat."}
    assert last[-1] == {
        "role": "user",
        "content": "Reply with only one of these labels: positive, negative, neutral",
    }
    assert len(last) == 2 + 2 * 2
    assert info.value.raw_output == "It is mostly upbeat."
    assert info.value.labels == tuple(SENTIMENT)


def test_prompt_reask_that_succeeds_counts_every_request(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(side_effect=[ok("Sure! Positive vibes."), ok("positive")])

    result = classify("x", labels=SENTIMENT, model="gpt-4o-mini", client=client, technique="prompt")

    assert result.label == "positive"
    assert result.usage.requests == 2
    assert result.usage.prompt_tokens == 40


def test_prompt_without_match_abstains_when_allowed(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("no idea"))

    result = classify(
        "x",
        labels=SENTIMENT,
        model="gpt-4o-mini",
        client=client,
        technique="prompt",
        reasks=0,
        abstain_below=0.5,
    )

    assert result.label is None
    assert result.raw_output == "no idea"
    assert route.call_count == 1


def test_loose_match_must_be_unambiguous() -> None:
    assert match_label("yes", ["Yes", "YES"]) is None
    assert match_label("Yes", ["Yes", "YES"]) == 0
    assert match_label("yes please", ["yes", "no"]) is None


# --- Errors that are not capability answers --------------------------------------------------


def test_other_bad_requests_are_raised_unchanged(api: respx.Router, client: openai.OpenAI) -> None:
    too_long = refused(
        "messages",
        code="context_length_exceeded",
        message="This model's maximum context length is 128000 tokens.",
    )
    route = api.post("/chat/completions").mock(return_value=too_long)

    with pytest.raises(openai.BadRequestError) as info:
        classify("x" * 10, labels=SENTIMENT, model="gpt-4o-mini", client=client)

    assert info.value.code == "context_length_exceeded"
    assert route.call_count == 1


def test_transient_errors_go_through_the_retry_layer(
    api: respx.Router, client: openai.OpenAI
) -> None:
    waits: list[float] = []
    route = api.post("/chat/completions").mock(
        side_effect=[httpx.Response(503), ok("positive", top=TOP)]
    )

    result = classify(
        "x",
        labels=SENTIMENT,
        model="gpt-4o-mini",
        client=client,
        retry=RetryPolicy(sleep=waits.append, jitter=0),
    )

    assert result.label == "positive"
    assert route.call_count == 2
    assert waits == [0.5]


def test_refusals_are_remembered_per_endpoint_and_model(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("logit_bias"), ok('{"label":"positive"}'), ok("positive", top=TOP)]
    )

    classify("x", labels=SENTIMENT, model="gpt-4o-mini", client=client)
    other = classify("x", labels=SENTIMENT, model="gpt-4o", client=client)

    assert other.technique == "logit_bias"
    assert "logit_bias" in bodies(route)[2]
    assert capability_key(client, "gpt-4o").pair == ("https://api.test/v1/", "gpt-4o")
    assert capabilities(client).refused("gpt-4o-mini") == {"logit_bias"}
    assert capabilities(client).refused("gpt-4o") == frozenset()


# --- Inputs ----------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def test_label_sets_from_sequences_enums_and_mappings() -> None:
    assert LabelSet.of(["a", "b"]).names == ("a", "b")
    assert LabelSet.of(Colour).names == ("red", "green")
    assert LabelSet.of(Level).names == ("LOW", "HIGH")
    described = LabelSet.of({"spam": "unsolicited ads", "ham": ""})
    assert described.names == ("spam", "ham")
    assert described.descriptions == ("unsolicited ads", None)


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ("a,b,c", TypeError),
        (["only"], ValueError),
        (["a", "a", "b"], ValueError),
        (["a", " "], ValueError),
        (["a", 2], TypeError),
    ],
)
def test_bad_label_sets_are_rejected(labels: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        LabelSet.of(labels)  # type: ignore[arg-type]


def test_descriptions_instructions_and_examples_go_into_the_prompt(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("spam", top=[("spam", -0.1)]))

    classify(
        "WIN A PRIZE",
        labels={"spam": "unsolicited ads", "ham": "everything else"},
        model="gpt-4o-mini",
        client=client,
        instructions="Sort support e-mails.",
        examples=[("lunch at 12?", "ham"), ("cheap pills", "spam")],
    )

    (body,) = bodies(route)
    assert body["messages"] == [
        {
            "role": "system",
            "content": "Sort support e-mails.\nReply with only one of these labels:\n"
            "- spam: unsolicited ads\n- ham: everything else",
        },
        {"role": "user", "content": "lunch at 12?"},
        {"role": "assistant", "content": "ham"},
        {"role": "user", "content": "cheap pills"},
        {"role": "assistant", "content": "spam"},
        {"role": "user", "content": "WIN A PRIZE"},
    ]


def test_a_conversation_can_be_classified(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("negative", top=TOP))
    conversation = [
        {"role": "system", "content": "You label support chats."},
        {"role": "user", "content": "My order never came."},
    ]

    classify(conversation, labels=SENTIMENT, model="gpt-4o-mini", client=client)

    (body,) = bodies(route)
    assert body["messages"][1:] == conversation


def test_bad_options_are_rejected_before_any_request(client: openai.OpenAI) -> None:
    with pytest.raises(ValueError, match="example label"):
        classify("x", labels=SENTIMENT, model="m", client=client, examples=[("y", "mixed")])
    with pytest.raises(ValueError, match="technique"):
        classify("x", labels=SENTIMENT, model="m", client=client, technique="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="abstain_below"):
        classify("x", labels=SENTIMENT, model="m", client=client, abstain_below=1.5)
    with pytest.raises(ValueError, match="empty list"):
        classify([], labels=SENTIMENT, model="gpt-4o", client=client)


# --- Async -----------------------------------------------------------------------------------


async def test_aclassify_walks_the_same_ladder(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("max_tokens"), refused("logit_bias"), ok('{"label":"neutral"}')]
    )

    result = await aclassify("x", labels=SENTIMENT, model="gpt-4o-mini", client=async_client)

    first, second, third = bodies(route)
    assert first["max_tokens"] == 1
    assert second["max_completion_tokens"] == 1
    assert third["response_format"] == STRICT_SCHEMA
    assert isinstance(result, Classification)
    assert (result.label, result.technique) == ("neutral", "structured")


async def test_aclassify_reads_probabilities(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    api.post("/chat/completions").mock(return_value=ok("positive", top=TOP))

    result = await aclassify("x", labels=SENTIMENT, model="gpt-4o-mini", client=async_client)

    assert result.label == "positive"
    assert result.confidence == pytest.approx(0.6 / 0.95)


def test_refusal_named_only_in_the_message_is_understood(
    api: respx.Router, client: openai.OpenAI
) -> None:
    # Some compatible servers leave `param` empty and quote the parameter in the message.
    vague = refused(
        None, message="Unsupported parameter: 'max_tokens' is not supported with this model."
    )
    route = api.post("/chat/completions").mock(side_effect=[vague, ok("negative", top=TOP)])

    result = classify("x", labels=SENTIMENT, model="gpt-4o-mini", client=client)

    assert result.label == "negative"
    assert bodies(route)[1]["max_completion_tokens"] == 1


def test_structured_examples_answer_in_json_and_bad_json_is_an_error(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("label: positive"))

    with pytest.raises(ClassificationError):
        classify(
            "x",
            labels=SENTIMENT,
            model="gpt-4o-mini",
            client=client,
            technique="structured",
            examples=[("great", "positive")],
        )

    messages = bodies(route)[0]["messages"]
    assert messages[2] == {"role": "assistant", "content": '{"label": "positive"}'}


def test_number_aliases_are_announced_as_numbers(api: respx.Router, client: openai.OpenAI) -> None:
    labels = [f"topic {i}" for i in range(1, 31)]
    route = api.post("/chat/completions").mock(
        return_value=ok("7", top=[("7", math.log(0.9)), ("1", math.log(0.1))])
    )

    result = classify("x", labels=labels, model="gpt-4o-mini", client=client)

    prompt = system_prompt(bodies(route)[0])
    assert prompt.startswith("Classify the text.\nReply with only the number of one label:\n")
    assert "\n7: topic 7\n" in prompt
    assert result.label == "topic 7"
    assert result.probabilities is not None
    assert result.probabilities["topic 7"] == pytest.approx(0.9)
    assert result.probabilities["topic 1"] == pytest.approx(0.1)
    assert bodies(route)[0]["top_logprobs"] == 20
