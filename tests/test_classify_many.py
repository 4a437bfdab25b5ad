"""classify_many / aclassify_many: bounded concurrency, order kept, failures collected."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from finetune_kit import (
    Classification,
    ClassificationError,
    RetryPolicy,
    aclassify_many,
    classify_many,
)

from .classify_calls import amany, many
from .fake_openai import completion, ok, refused

if TYPE_CHECKING:
    import respx

LABELS = ["cat", "dog", "bird"]


pytestmark = pytest.mark.usefixtures("fresh_capabilities")


def _text(request: httpx.Request) -> str:
    content: str = json.loads(request.content)["messages"][-1]["content"]
    return content


def _answer_by_text(request: httpx.Request) -> httpx.Response:
    """Answers with the label named in the text ("a dog" -> dog); "boom" fails with a 500."""
    text = _text(request)
    if text == "boom":
        return httpx.Response(500, json={"error": {"message": "server fell over"}})
    label = next(label for label in LABELS if label in text)
    return httpx.Response(200, json=completion(label, top=[(label, math.log(0.9))]))


TEXTS = ["a dog", "a cat", "a bird", "another cat", "boom", "a dog again", "cat"]


def test_results_come_back_in_input_order_with_failures_in_place(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer_by_text)

    results = many(client, TEXTS, concurrency=3, retry=RetryPolicy.none())

    labels = [r.label if isinstance(r, Classification) else None for r in results]
    assert labels == ["dog", "cat", "bird", "cat", None, "dog", "cat"]
    failure = results[4]
    assert isinstance(failure, ClassificationError)
    assert isinstance(failure.__cause__, openai.InternalServerError)
    assert "text 4" in str(failure)
    assert failure.labels == tuple(LABELS)


def test_a_text_without_a_label_is_collected(api: respx.Router, client: openai.OpenAI) -> None:
    api.post("/chat/completions").mock(
        side_effect=lambda request: ok("The") if _text(request) == "?" else _answer_by_text(request)
    )

    results = many(client, ["a cat", "?", "a bird"], technique="logit_bias")

    assert isinstance(results[0], Classification)
    assert isinstance(results[1], ClassificationError)
    assert results[1].raw_output == "The"
    assert isinstance(results[2], Classification)


def test_requests_run_concurrently_up_to_the_limit(
    api: respx.Router, client: openai.OpenAI
) -> None:
    concurrency = 4
    # Every request waits until `concurrency` of them are in flight at once: the call only
    # finishes if that many really run together.
    barrier = threading.Barrier(concurrency, timeout=10)
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        barrier.wait()
        with lock:
            in_flight[0] -= 1
        return _answer_by_text(request)

    api.post("/chat/completions").mock(side_effect=answer)

    results = many(
        client,
        ["a cat"] * 8,
        technique="logit_bias",
        concurrency=concurrency,
        retry=RetryPolicy.none(),
    )

    assert all(isinstance(r, Classification) for r in results)
    assert in_flight[1] == concurrency


def test_first_text_probes_the_ladder_alone(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=lambda request: (
            refused("logit_bias")
            if "logit_bias" in json.loads(request.content)
            else ok('{"label":"dog"}')
        )
    )

    results = many(client, ["a", "b", "c", "d", "e"], concurrency=4)

    assert [r.label for r in results if isinstance(r, Classification)] == ["dog"] * 5
    refusals = [c for c in route.calls if c.response is not None and c.response.status_code == 400]
    assert len(refusals) == 1
    assert route.call_count == 6


def test_errors_that_doom_every_text_are_raised(api: respx.Router, client: openai.OpenAI) -> None:
    api.post("/chat/completions").mock(
        return_value=httpx.Response(401, json={"error": {"message": "bad key"}})
    )

    with pytest.raises(openai.AuthenticationError):
        classify_many(
            ["a", "b", "c"], labels=LABELS, model="gpt-4o-mini", client=client, progress=False
        )


def test_progress_bar_can_be_shown(
    api: respx.Router, client: openai.OpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer_by_text)
    threads = threading.active_count()

    classify_many(["a cat", "a dog"], labels=LABELS, model="gpt-4o-mini", client=client)

    assert "classify gpt-4o-mini" in capsys.readouterr().err
    assert threading.active_count() == threads  # no monitor or worker thread left behind


def test_empty_input_and_bad_concurrency(client: openai.OpenAI) -> None:
    assert classify_many([], labels=LABELS, model="gpt-4o-mini", client=client) == []
    with pytest.raises(ValueError, match="concurrency"):
        classify_many(["x"], labels=LABELS, model="gpt-4o-mini", client=client, concurrency=0)


async def test_async_results_in_order_with_failures_in_place(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer_by_text)

    results = await amany(async_client, TEXTS, concurrency=3, retry=RetryPolicy.none())

    labels = [r.label if isinstance(r, Classification) else None for r in results]
    assert labels == ["dog", "cat", "bird", "cat", None, "dog", "cat"]
    assert isinstance(results[4], ClassificationError)


async def test_async_runs_concurrently_up_to_the_limit(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    concurrency = 3
    in_flight = [0, 0]

    async def answer(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return _answer_by_text(request)

    api.post("/chat/completions").mock(side_effect=answer)

    results = await amany(async_client, ["a bird"] * 9, concurrency=concurrency)

    assert [r.label for r in results if isinstance(r, Classification)] == ["bird"] * 9
    assert in_flight[1] == concurrency


async def test_async_fatal_error_stops_the_workers(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        return_value=httpx.Response(404, json={"error": {"message": "no such model"}})
    )

    with pytest.raises(openai.NotFoundError):
        await aclassify_many(
            ["a"] * 50,
            labels=LABELS,
            model="gpt-4o-nope",
            client=async_client,
            technique="logit_bias",
            concurrency=2,
            progress=False,
        )

    assert route.call_count <= 2
