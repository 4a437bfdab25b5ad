"""classify_batch(): input files, batches, polling, output matched by custom_id."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import pytest

from finetune_kit import (
    Classification,
    ClassificationError,
    ClassifyOptions,
    RetryPolicy,
    classify_batch,
)
from finetune_kit.classification import _batch
from finetune_kit.classification._classify import Call, LabelSet, Spec

from .classify_calls import abatch, batch
from .fake_openai import FakeBatchService, completion, label_in, labels_of, ok, refused

if TYPE_CHECKING:
    import openai
    import respx

    from .fake_openai import Sleeps

LABELS = ["cat", "dog", "bird"]
TEXTS = ["a cat", "a dog", "boom", "a bird"]


pytestmark = pytest.mark.usefixtures("fresh_capabilities")


def test_batch_round_trip_in_input_order(api: respx.Router, client: openai.OpenAI) -> None:
    fake = FakeBatchService(api, polls_until_done=2)
    waits: list[float] = []

    results = batch(
        client,
        TEXTS,
        technique="logit_bias",
        poll_interval=7.0,
        retry=RetryPolicy(sleep=waits.append),
    )

    assert labels_of(results) == ["cat", "dog", None, "bird"]
    failure = results[2]
    assert isinstance(failure, ClassificationError)
    assert "HTTP 500" in str(failure)
    assert "text 2" in str(failure)
    first = results[0]
    assert isinstance(first, Classification)
    assert first.technique == "logit_bias"
    assert first.probabilities == {"cat": 1.0, "dog": 0.0, "bird": 0.0}
    # The requests are exactly what classify() sends, addressed by custom_id.
    (lines,) = fake.inputs
    assert [line["custom_id"] for line in lines] == ["text-0", "text-1", "text-2", "text-3"]
    assert {line["method"] for line in lines} == {"POST"}
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    body = lines[0]["body"]
    assert body["logit_bias"] == {"8837": 100, "30146": 100, "32981": 100}
    assert body["max_tokens"] == 1
    assert body["logprobs"] is True
    assert "stream" not in body
    (created,) = fake.created
    assert created["endpoint"] == "/v1/chat/completions"
    assert created["completion_window"] == "24h"
    assert created["metadata"]["model"] == "gpt-4o-mini"
    assert waits == [7.0, 7.0]


def test_unknown_capabilities_are_probed_live_first(
    api: respx.Router, client: openai.OpenAI
) -> None:
    # The live answer differs from the batch's on purpose: the probe's own answer is kept.
    live = api.post("/chat/completions").mock(return_value=ok("dog", top=[("dog", -0.1)]))
    fake = FakeBatchService(api)

    results = batch(client, TEXTS, retry=RetryPolicy(sleep=lambda _: None))

    assert live.call_count == 1
    # The probed text is in the batch too, so what is sent does not depend on the probe.
    (lines,) = fake.inputs
    assert [line["custom_id"] for line in lines] == ["text-0", "text-1", "text-2", "text-3"]
    assert labels_of(results) == ["dog", "dog", None, "bird"]


def test_the_probe_decides_the_rung_of_the_batch(api: respx.Router, client: openai.OpenAI) -> None:
    refusal = refused("logit_bias", message="logit_bias is not supported")
    api.post("/chat/completions").mock(side_effect=[refusal, ok('{"label":"cat"}')])

    def structured(body: dict[str, Any]) -> dict[str, Any]:
        assert "logit_bias" not in body
        assert body["response_format"]["json_schema"]["strict"] is True
        label = label_in(body) or "cat"
        return {"status_code": 200, "body": completion(json.dumps({"label": label}))}

    FakeBatchService(api, answer=structured)

    results = batch(client, ["a cat", "a bird", "a dog"], retry=RetryPolicy(sleep=lambda _: None))

    assert labels_of(results) == ["cat", "bird", "dog"]
    assert {r.technique for r in results if isinstance(r, Classification)} == {"structured"}


def test_large_inputs_are_split_into_several_batches(
    api: respx.Router, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_batch, "MAX_REQUESTS", 2)
    fake = FakeBatchService(api)
    texts = ["a cat", "a dog", "a bird", "cat", "dog"]

    results = batch(client, texts, technique="logit_bias", retry=RetryPolicy(sleep=lambda _: None))

    assert [len(lines) for lines in fake.inputs] == [2, 2, 1]
    assert len(fake.batches) == 3
    assert labels_of(results) == ["cat", "dog", "bird", "cat", "dog"]


def test_input_files_respect_the_byte_limit() -> None:
    key = ("https://api.test/v1/", "gpt-4o-mini")
    spec = Spec.build(LABELS, "gpt-4o-mini", key, technique="structured", reasks=0)
    texts = ["x" * 100] * 5
    one = len(next(_batch.input_files(spec, texts, [0], "structured", set()))[1])

    files = list(_batch.input_files(spec, texts, range(5), "structured", set(), max_bytes=2 * one))

    assert [indices for indices, _ in files] == [[0, 1], [2, 3], [4]]
    assert all(len(content) <= 2 * one for _, content in files)


def test_expired_batch_keeps_what_was_answered(api: respx.Router, client: openai.OpenAI) -> None:
    FakeBatchService(api, outcome="expired", answered=2)

    results = batch(client, TEXTS, technique="logit_bias", retry=RetryPolicy(sleep=lambda _: None))

    assert labels_of(results) == ["cat", "dog", None, None]
    for failure in results[2:]:
        assert isinstance(failure, ClassificationError)
        assert "ended expired" in str(failure)


def test_failed_batch_fails_each_of_its_texts(api: respx.Router, client: openai.OpenAI) -> None:
    FakeBatchService(api, outcome="failed")

    results = batch(
        client, ["a cat", "a dog"], technique="logit_bias", retry=RetryPolicy(sleep=lambda _: None)
    )

    assert all(isinstance(r, ClassificationError) for r in results)
    assert "invalid_model: no such model" in str(results[0])


def test_waiting_gives_up_after_the_timeout(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    FakeBatchService(api, polls_until_done=100)

    with pytest.raises(TimeoutError, match="batch_0"):
        batch(
            client,
            ["a cat"],
            technique="logit_bias",
            poll_interval=30.0,
            timeout=60.0,
            retry=policy,
        )

    assert sleeps.waits == [30.0, 30.0]


def test_prompt_answers_needing_a_reask_get_it_live(
    api: respx.Router, client: openai.OpenAI
) -> None:
    def chatty(body: dict[str, Any]) -> dict[str, Any]:
        label = label_in(body)
        return {"status_code": 200, "body": completion(label or "no idea", completion_tokens=3)}

    FakeBatchService(api, answer=chatty)
    live = api.post("/chat/completions").mock(return_value=ok("bird"))

    results = batch(
        client,
        ["a cat", "something with wings"],
        technique="prompt",
        retry=RetryPolicy(sleep=lambda _: None),
    )

    assert labels_of(results) == ["cat", "bird"]
    reask = json.loads(live.calls.last.request.content)["messages"]
    assert reask[-2] == {"role": "assistant", "content": "no idea"}
    second = results[1]
    assert isinstance(second, Classification)
    assert second.usage.requests == 2


def test_read_output_handles_every_line_shape() -> None:
    good = {
        "custom_id": "text-0",
        "response": {"status_code": 200, "body": completion("cat")},
        "error": None,
    }
    refused = {
        "custom_id": "text-1",
        "response": {"status_code": 400, "body": {"error": {"message": "bad"}}},
        "error": None,
    }
    lost = {
        "custom_id": "text-2",
        "response": None,
        "error": {"code": "batch_expired", "message": "expired"},
    }
    content = b"\n".join(json.dumps(x).encode() for x in (good, refused, lost)) + b"\n\n"

    found = _batch.read_output(content)

    assert not isinstance(found["text-0"], str)
    assert found["text-1"] == "HTTP 400: bad"
    assert found["text-2"] == "batch_expired: expired"


def test_label_set_is_validated_before_any_upload(client: openai.OpenAI) -> None:
    with pytest.raises(ValueError, match="two labels"):
        classify_batch(["x"], labels=["only"], model="gpt-4o-mini", client=client)
    assert LabelSet.of(LABELS).names == tuple(LABELS)


async def test_async_batch_round_trip(api: respx.Router, async_client: openai.AsyncOpenAI) -> None:
    FakeBatchService(api)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    results = await abatch(
        async_client,
        TEXTS,
        technique="logit_bias",
        poll_interval=2.0,
        retry=RetryPolicy(async_sleep=sleep),
    )

    assert labels_of(results) == ["cat", "dog", None, "bird"]
    assert waits == [2.0]


def test_run_batch_takes_a_built_call_and_names_its_caller(
    api: respx.Router, client: openai.OpenAI, async_client: openai.AsyncOpenAI
) -> None:
    # The entry for callers that build the call themselves (TunedModel).
    FakeBatchService(api)
    options = ClassifyOptions.of(technique="logit_bias")
    settings = _batch.BatchSettings(poll_interval=1.0, progress=False)
    retry = RetryPolicy(sleep=lambda _: None)
    where = "TunedModel.classify_batch()"
    call = Call(where, LABELS, "gpt-4o-mini", client, retry, options)

    results = _batch.run_batch(TEXTS, call, settings)

    assert labels_of(results) == ["cat", "dog", None, "bird"]
    with pytest.raises(TypeError, match=r"TunedModel.classify_batch\(\) needs an openai.OpenAI"):
        _batch.run_batch(TEXTS, replace(call, client=cast("openai.OpenAI", async_client)), settings)
