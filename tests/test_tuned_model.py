"""TunedModel / AsyncTunedModel: chat, bound classify, evaluate, shutdown_date, delete."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import TYPE_CHECKING, Any, cast

import httpx
import openai
import pytest
from openai.types import Model

from finetune_kit import AsyncTunedModel, Classification, Dataset, RetryPolicy, TunedModel
from finetune_kit.classification._batch_submit import IDEMPOTENCY_METADATA_KEY
from finetune_kit.models._tuned_model import shutdown_date_of

from .fake_openai import FakeBatchService, bodies, completion, ok, refused

if TYPE_CHECKING:
    import respx

NAME = "ft:gpt-4o-mini-2024-07-18:acme:pets:AbC123"
LABELS = ["cat", "dog"]


pytestmark = pytest.mark.usefixtures("fresh_capabilities")


def _by_text(request: httpx.Request) -> httpx.Response:
    text = json.loads(request.content)["messages"][-1]["content"]
    label = "dog" if "bark" in text else "cat"
    return httpx.Response(200, json=completion(label, top=[(label, math.log(0.9))]))


def _model_json(**extra: Any) -> dict[str, Any]:
    return {"id": NAME, "object": "model", "created": 0, "owned_by": "acme", **extra}


def test_construction_makes_no_request_and_reprs() -> None:
    model = TunedModel(NAME, job_id="ftjob-1", base_model="gpt-4o-mini", checkpoint_step=30)

    assert repr(model) == f"TunedModel({NAME!r}, job_id='ftjob-1', checkpoint_step=30)"
    assert repr(AsyncTunedModel("gpt-4o")) == "AsyncTunedModel('gpt-4o')"


def test_the_origin_is_one_value_of_its_parts() -> None:
    model = TunedModel(NAME, job_id="ftjob-1", checkpoint_step=30)

    assert model.origin == {
        "job_id": "ftjob-1",
        "base_model": None,
        "checkpoint_step": 30,
        "deployment": None,
    }
    model.base_model = "gpt-4o-mini"  # the parts stay attributes, as before
    assert model.origin["base_model"] == "gpt-4o-mini"
    assert AsyncTunedModel(NAME, **model.origin).origin == model.origin


def test_chat_sends_the_conversation_and_returns_the_text(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("Hello there", completion_tokens=2))

    reply = TunedModel(NAME, client=client).chat(
        "hi", instructions="Be brief.", temperature=0.2, extra_body={"seed": 7}
    )

    (body,) = bodies(route)
    assert reply == "Hello there"
    assert body["model"] == NAME
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert body["temperature"] == 0.2
    assert body["seed"] == 7
    assert "max_tokens" not in body


def test_chat_renames_max_tokens_for_models_that_refuse_it(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("max_tokens"), ok("one"), ok("two")]
    )
    model = TunedModel("o3-mini", client=client)

    assert model.chat("a", max_tokens=50) == "one"
    assert model.chat("b", max_tokens=60) == "two"

    first, second, third = bodies(route)
    assert first["max_tokens"] == 50
    assert second["max_completion_tokens"] == 50
    assert "max_tokens" not in second
    assert third["max_completion_tokens"] == 60  # remembered


def test_chat_returns_a_refusal_as_text(api: respx.Router, client: openai.OpenAI) -> None:
    api.post("/chat/completions").mock(return_value=ok(None, refusal="I can't."))

    assert TunedModel(NAME, client=client).chat("x") == "I can't."


def test_classify_is_bound_to_the_model_and_its_base_encoding(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(side_effect=_by_text)
    # An Azure-style deployment name says nothing about the encoding; base_model does.
    model = TunedModel("pets-deployment", client=client, base_model="gpt-4o-mini")

    result = model.classify("it barks", labels=LABELS)
    many = model.classify_many(["meow", "bark"], labels=LABELS, progress=False)

    assert result.label == "dog"
    assert [r.label for r in many if isinstance(r, Classification)] == ["cat", "dog"]
    body = bodies(route)[0]
    assert body["model"] == "pets-deployment"
    assert body["logit_bias"] == {"8837": 100, "30146": 100}  # cat, dog in o200k_base


def test_evaluate_scores_a_held_out_dataset(api: respx.Router, client: openai.OpenAI) -> None:
    api.post("/chat/completions").mock(side_effect=_by_text)
    held_out = Dataset.from_labels(
        ["it barks", "loud bark", "it purrs", "bark bark", "it meows"],
        ["dog", "dog", "cat", "cat", "cat"],
        system="Which animal?",
    )

    evaluation = TunedModel(NAME, client=client).evaluate(held_out, progress=False)

    assert evaluation.model == NAME
    assert evaluation.labels == ("dog", "cat")
    assert evaluation.n == 5
    assert evaluation.accuracy == pytest.approx(0.8)
    assert evaluation.confusion == ((2, 0, 0), (1, 2, 0))
    assert evaluation.usage.requests == 5


def test_evaluate_sends_each_example_exactly_as_in_the_data(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(side_effect=_by_text)
    held_out = Dataset(
        [
            {
                "messages": [
                    {"role": "system", "content": "Which animal?"},
                    {"role": "user", "content": "it barks"},
                    {"role": "assistant", "content": "dog"},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": "it purrs"},
                    {"role": "assistant", "content": "cat"},
                ]
            },
        ]
    )

    evaluation = TunedModel(NAME, client=client).evaluate(held_out, progress=False)

    first, second = bodies(route)
    assert first["messages"] == [
        {"role": "system", "content": "Which animal?"},
        {"role": "user", "content": "it barks"},
    ]
    assert second["messages"] == [{"role": "user", "content": "it purrs"}]
    assert first["logit_bias"] == {"30146": 100, "8837": 100}  # dog, cat in o200k_base
    assert evaluation.technique == "logit_bias"
    assert evaluation.accuracy == 1.0


async def test_evaluate_lists_the_labels_only_when_nothing_else_is_allowed(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("logit_bias"), refused("response_format"), ok("dog"), ok("cat")]
    )
    held_out = Dataset.from_labels(["it barks", "it purrs"], ["dog", "cat"], system="Which animal?")

    evaluation = await AsyncTunedModel(NAME, client=async_client).evaluate(held_out, progress=False)

    last = bodies(route)[-1]
    # One system message: the data's own, with the label list added to it.
    assert last["messages"] == [
        {
            "role": "system",
            "content": "Which animal?\nReply with only one of these labels: dog, cat",
        },
        {"role": "user", "content": "it purrs"},
    ]
    assert evaluation.technique == "prompt"
    assert evaluation.accuracy == 1.0


def test_evaluate_with_labels_whose_first_tokens_collide_skips_logit_bias(
    api: respx.Router, client: openai.OpenAI
) -> None:
    # "refund" and "refund request" share their first token: a model tuned to answer the
    # labels cannot answer with aliases, so structured output carries the restriction.
    route = api.post("/chat/completions").mock(return_value=ok('{"label": "refund"}'))
    held_out = [{"text": "x", "label": "refund"}, {"text": "y", "label": "refund request"}]

    evaluation = TunedModel(NAME, client=client).evaluate(
        held_out, labels=["refund", "refund request"], progress=False
    )

    assert all("logit_bias" not in body for body in bodies(route))
    assert bodies(route)[0]["messages"] == [{"role": "user", "content": "x"}]
    assert evaluation.technique == "structured"


def test_shutdown_date_from_the_models_endpoint(api: respx.Router, client: openai.OpenAI) -> None:
    api.get(f"/models/{NAME}").mock(
        return_value=httpx.Response(200, json=_model_json(shutdown_date="2027-01-14"))
    )
    api.get("/models/gpt-4o").mock(return_value=httpx.Response(200, json=_model_json()))

    assert TunedModel(NAME, client=client).shutdown_date() == dt.date(2027, 1, 14)
    assert TunedModel("gpt-4o", client=client).shutdown_date() is None


def test_shutdown_date_of_timestamps_and_undeclared_fields() -> None:
    stamp = Model.model_construct(id="m", created=0, object="model", owned_by="o")
    object.__setattr__(stamp, "__pydantic_extra__", {"shutdown_date": 1_799_971_200})
    odd = Model.model_construct(id="m", created=0, object="model", owned_by="o")
    object.__setattr__(odd, "__pydantic_extra__", {"shutdown_date": "soon"})

    assert shutdown_date_of(stamp) == dt.date(2027, 1, 15)
    assert shutdown_date_of(odd) is None


def test_delete(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.delete(f"/models/{NAME}").mock(
        return_value=httpx.Response(200, json={"id": NAME, "object": "model", "deleted": True})
    )

    assert TunedModel(NAME, client=client).delete() is True
    assert route.call_count == 1


def test_missing_model_raises_the_sdk_error(api: respx.Router, client: openai.OpenAI) -> None:
    api.get(f"/models/{NAME}").mock(
        return_value=httpx.Response(404, json={"error": {"message": "not found"}})
    )

    with pytest.raises(openai.NotFoundError):
        TunedModel(NAME, client=client).shutdown_date()


async def test_async_surface(api: respx.Router, async_client: openai.AsyncOpenAI) -> None:
    api.post("/chat/completions").mock(side_effect=_by_text)
    api.get(f"/models/{NAME}").mock(
        return_value=httpx.Response(200, json=_model_json(shutdown_date="2027-01-14"))
    )
    api.delete(f"/models/{NAME}").mock(
        return_value=httpx.Response(200, json={"id": NAME, "object": "model", "deleted": True})
    )
    model = AsyncTunedModel(NAME, client=async_client)

    assert await model.chat("it barks") == "dog"
    assert (await model.classify("it barks", labels=LABELS)).label == "dog"
    many = await model.classify_many(["meow", "bark"], labels=LABELS, progress=False)
    assert [r.label for r in many if isinstance(r, Classification)] == ["cat", "dog"]
    evaluation = await model.evaluate(
        [{"text": "bark", "label": "dog"}, {"text": "meow", "label": "cat"}], progress=False
    )
    assert evaluation.accuracy == 1.0
    assert await model.shutdown_date() == dt.date(2027, 1, 14)
    assert await model.delete() is True


def test_classify_batch_is_bound_too(api: respx.Router, client: openai.OpenAI) -> None:
    fake = FakeBatchService(api)
    model = TunedModel(NAME, client=client)

    results = model.classify_batch(
        ["a dog", "a cat"],
        labels=["cat", "dog"],
        technique="logit_bias",
        progress=False,
        retry=RetryPolicy(sleep=lambda _: None),
    )

    assert [r.label for r in results if isinstance(r, Classification)] == ["dog", "cat"]
    assert {line["body"]["model"] for line in fake.inputs[0]} == {NAME}


async def test_async_classify_batch(api: respx.Router, async_client: openai.AsyncOpenAI) -> None:
    FakeBatchService(api)

    async def no_wait(seconds: float) -> None:
        del seconds

    results = await AsyncTunedModel(NAME, client=async_client).classify_batch(
        ["a bird"],
        labels=["cat", "dog", "bird"],
        technique="logit_bias",
        progress=False,
        retry=RetryPolicy(async_sleep=no_wait),
    )

    assert [r.label for r in results if isinstance(r, Classification)] == ["bird"]


@pytest.mark.parametrize("keep_files", [False, True])
async def test_classify_batch_takes_the_key_and_keep_files(
    api: respx.Router,
    client: openai.OpenAI,
    async_client: openai.AsyncOpenAI,
    keep_files: bool,
) -> None:
    # As classify_batch() does: the given key on every batch; the files kept on request.
    fake = FakeBatchService(api)
    options: dict[str, Any] = {
        "labels": LABELS,
        "technique": "logit_bias",
        "progress": False,
        "keep_files": keep_files,
    }

    TunedModel(NAME, client=client).classify_batch(
        ["a dog"], retry=RetryPolicy(sleep=lambda _: None), idempotency_key="sync", **options
    )
    await AsyncTunedModel(NAME, client=async_client).classify_batch(
        ["a dog"], retry=RetryPolicy(async_sleep=_no_wait), idempotency_key="async", **options
    )

    assert [c["metadata"][IDEMPOTENCY_METADATA_KEY] for c in fake.created] == ["sync", "async"]
    assert bool(fake.deleted) is not keep_files


async def _no_wait(seconds: float) -> None:
    del seconds


@pytest.mark.parametrize(
    ("method", "where"),
    [
        ("chat", "TunedModel.chat()"),
        ("classify", "TunedModel.classify()"),
        ("classify_many", "TunedModel.classify_many()"),
        ("classify_batch", "TunedModel.classify_batch()"),
        ("evaluate", "TunedModel.evaluate()"),
    ],
)
def test_an_unknown_keyword_names_the_method(
    api: respx.Router, client: openai.OpenAI, method: str, where: str
) -> None:
    route = api.route().respond(500)
    first: dict[str, Any] = {
        "chat": "hi",
        "classify": "hi",
        "classify_many": ["hi"],
        "classify_batch": ["hi"],
        "evaluate": [{"text": "hi", "label": "cat"}],
    }
    labels = {} if method in ("chat", "evaluate") else {"labels": LABELS}

    with pytest.raises(
        TypeError, match=rf"^{re.escape(where)} got an unexpected keyword .*'tempo'"
    ):
        getattr(TunedModel(NAME, client=client), method)(first[method], tempo=1, **labels)

    assert not route.called


async def test_an_unknown_keyword_names_the_async_method(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    route = api.route().respond(500)
    model = AsyncTunedModel(NAME, client=async_client)

    with pytest.raises(TypeError, match=r"^AsyncTunedModel\.chat\(\) got an unexpected"):
        await model.chat("hi", **cast("Any", {"temprature": 0.1}))
    with pytest.raises(TypeError, match=r"^AsyncTunedModel\.classify\(\) got an unexpected"):
        await model.classify("hi", labels=LABELS, **cast("Any", {"model": "gpt-4o"}))

    assert not route.called


def test_evaluate_with_instructions_takes_few_shot_examples_and_reasks(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(side_effect=_by_text)

    evaluation = TunedModel(NAME, client=client).evaluate(
        [{"text": "it barks", "label": "dog"}],
        labels=LABELS,
        instructions="Which animal?",
        examples=[("purr", "cat")],
        reasks=0,
        progress=False,
    )

    (body,) = bodies(route)
    assert evaluation.accuracy == 1.0
    assert body["messages"][0]["content"].startswith("Which animal?")
    assert [m["content"] for m in body["messages"][1:]] == ["purr", "cat", "it barks"]


def test_evaluate_refuses_examples_it_could_not_send(client: openai.OpenAI) -> None:
    # Without instructions each example goes out exactly as in the data: no room for shots.
    with pytest.raises(ValueError, match=r"TunedModel.evaluate\(\): examples need instructions="):
        TunedModel(NAME, client=client).evaluate(
            [{"text": "it barks", "label": "dog"}], examples=[("purr", "cat")], progress=False
        )


def test_a_call_may_name_another_base_model_than_the_handle(
    api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(side_effect=_by_text)
    model = TunedModel("pets-deployment", client=client, base_model="gpt-4o-mini")

    model.classify("it barks", labels=LABELS, base_model="gpt-3.5-turbo")

    # cat, dog in cl100k_base (gpt-3.5-turbo's encoding), not o200k_base (the handle's)
    assert bodies(route)[0]["logit_bias"] == {"4719": 100, "18964": 100}


def test_classify_batch_takes_every_classify_option(
    api: respx.Router, client: openai.OpenAI
) -> None:
    fake = FakeBatchService(api)

    TunedModel(NAME, client=client).classify_batch(
        ["a dog"],
        labels=["cat", "dog"],
        technique="logit_bias",
        instructions="Which pet?",
        reasks=0,
        progress=False,
        retry=RetryPolicy(sleep=lambda _: None),
    )

    assert "Which pet?" in fake.inputs[0][0]["body"]["messages"][0]["content"]
