"""Wrong types and values get an error that names the argument, raised at the call.

One table per area (the lead merges the files of several helpers): ``CLASSIFY_CASES`` covers
classification, evaluation and TunedModel. Each case is called with a client whose every
request is refused by the mock, so a case that got as far as sending fails the test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai
import pytest

import finetune_kit as fk
from finetune_kit.classification._options import check_concurrency

if TYPE_CHECKING:
    from collections.abc import Callable

    import respx

LABELS = ["cat", "dog"]
URL = "http://127.0.0.1:9/v1"
KEY = "sk-test-not-a-real-key"


@dataclass(frozen=True)
class Clients:
    """A sync and an async client aimed at the mock."""

    sync: openai.OpenAI
    aio: openai.AsyncOpenAI


@dataclass(frozen=True)
class Case:
    """A call that must fail with ``error`` whose message matches ``names``."""

    id: str
    call: Callable[[Clients], object]
    error: type[Exception]
    names: str


def _run(value: object) -> object:
    """Await a coroutine on a fresh loop; return anything else."""
    if asyncio.iscoroutine(value):
        return asyncio.run(value)
    return value


def _any(**kwargs: Any) -> Any:
    # Wrong types on purpose: the type checker would refuse them, the library must too.
    return kwargs


CLASSIFY_CASES = [
    Case(
        "classify-model-none",
        lambda k: fk.classify("x", **_any(labels=LABELS, model=None, client=k.sync)),
        TypeError,
        "model must be",
    ),
    Case(
        "classify-model-blank",
        lambda k: fk.classify("x", labels=LABELS, model=" ", client=k.sync),
        ValueError,
        "model cannot be empty",
    ),
    Case(
        "classify-client-url",
        lambda _: fk.classify("x", **_any(labels=LABELS, model="gpt-4o-mini", client=URL)),
        TypeError,
        r"classify\(\) needs an openai.OpenAI client, not str",
    ),
    Case(
        "classify-async-client",
        lambda k: fk.classify("x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.aio)),
        TypeError,
        r"needs an openai.OpenAI client, not AsyncOpenAI",
    ),
    Case(
        "aclassify-sync-client",
        lambda k: fk.aclassify("x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync)),
        TypeError,
        r"aclassify\(\) needs an openai.AsyncOpenAI client, not OpenAI",
    ),
    Case(
        "classify-retry-string",
        lambda k: fk.classify(
            "x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, retry="fast")
        ),
        TypeError,
        "retry must be a RetryPolicy",
    ),
    Case(
        "classify-text-none",
        lambda k: fk.classify(_any(x=None)["x"], labels=LABELS, model="gpt-4o-mini", client=k.sync),
        TypeError,
        "text must be a string or a list of chat messages, not NoneType",
    ),
    Case(
        "classify-text-empty",
        lambda k: fk.classify("  ", labels=LABELS, model="gpt-4o-mini", client=k.sync),
        ValueError,
        "text is empty",
    ),
    Case(
        "classify-examples-strings",
        lambda k: fk.classify(
            "x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, examples=["x"])
        ),
        TypeError,
        r"examples\[0\] must be a \(text, label\) pair",
    ),
    Case(
        "classify-abstain-string",
        lambda k: fk.classify(
            "x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, abstain_below="high")
        ),
        TypeError,
        "abstain_below must be a number",
    ),
    Case(
        "classify-labels-one-string",
        lambda k: fk.classify("x", **_any(labels="cat,dog", model="gpt-4o-mini", client=k.sync)),
        TypeError,
        "labels must be a sequence of strings, not one string",
    ),
    Case(
        "classify-labels-none",
        lambda k: fk.classify("x", **_any(labels=None, model="gpt-4o-mini", client=k.sync)),
        TypeError,
        "labels must be a sequence",
    ),
    Case(
        "classify-technique-unknown",
        lambda k: fk.classify(
            "x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, technique="magic")
        ),
        ValueError,
        "technique must be",
    ),
    Case(
        "classify_many-one-string",
        lambda k: fk.classify_many(
            "I was charged twice", labels=LABELS, model="gpt-4o-mini", client=k.sync
        ),
        TypeError,
        "texts must be a list of texts, not one string",
    ),
    Case(
        "aclassify_many-one-string",
        lambda k: fk.aclassify_many(
            "I was charged twice", labels=LABELS, model="gpt-4o-mini", client=k.aio
        ),
        TypeError,
        "texts must be a list of texts, not one string",
    ),
    Case(
        "classify_many-concurrency-string",
        lambda k: fk.classify_many(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, concurrency="8")
        ),
        TypeError,
        "concurrency must be an int",
    ),
    Case(
        "aclassify_many-concurrency-zero",
        lambda k: fk.aclassify_many(
            ["x"], labels=LABELS, model="gpt-4o-mini", client=k.aio, concurrency=0
        ),
        ValueError,
        "concurrency must be at least 1",
    ),
    Case(
        "classify_many-empty-item",
        lambda k: fk.classify_many(["ok", ""], labels=LABELS, model="gpt-4o-mini", client=k.sync),
        ValueError,
        r"texts\[1\] is empty",
    ),
    Case(
        "classify_many-sync-client-async",
        lambda k: fk.aclassify_many(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync)
        ),
        TypeError,
        r"aclassify_many\(\) needs an openai.AsyncOpenAI client",
    ),
    Case(
        "tuned-model-async-client",
        lambda k: fk.TunedModel("ft:gpt-4o-mini:x", client=_any(x=k.aio)["x"]),
        TypeError,
        r"TunedModel\(\) needs an openai.OpenAI client, not AsyncOpenAI",
    ),
    Case(
        "async-tuned-model-sync-client",
        lambda k: fk.AsyncTunedModel("ft:gpt-4o-mini:x", client=_any(x=k.sync)["x"]),
        TypeError,
        r"AsyncTunedModel\(\) needs an openai.AsyncOpenAI client, not OpenAI",
    ),
    Case(
        "tuned-model-name-none",
        lambda k: fk.TunedModel(_any(x=None)["x"], client=k.sync),
        TypeError,
        "name must be a model name",
    ),
    Case(
        "tuned-model-classify_many-one-string",
        lambda k: fk.TunedModel("ft:gpt-4o-mini:x", client=k.sync).classify_many(
            "one text", labels=LABELS
        ),
        TypeError,
        "not one string",
    ),
    Case(
        "async-tuned-model-classify-text-none",
        lambda k: fk.AsyncTunedModel("ft:gpt-4o-mini:x", client=k.aio).classify(
            _any(x=None)["x"], labels=LABELS
        ),
        TypeError,
        "text must be",
    ),
    Case(
        "tuned-model-evaluate-concurrency",
        lambda k: fk.TunedModel("ft:gpt-4o-mini:x", client=k.sync).evaluate(
            [{"text": "x", "label": "cat"}], **_any(concurrency=2.5)
        ),
        TypeError,
        "concurrency must be an int",
    ),
    Case(
        "task-classify-async-client",
        lambda k: fk.ClassificationTask(LABELS).classify(
            "x", **_any(model="gpt-4o-mini", client=k.aio)
        ),
        TypeError,
        r"ClassificationTask.classify\(\) needs an openai.OpenAI client",
    ),
    Case(
        "task-aevaluate-sync-client",
        lambda k: fk.ClassificationTask(LABELS).aevaluate(
            [{"text": "x", "label": "cat"}], **_any(model="gpt-4o-mini", client=k.sync)
        ),
        TypeError,
        r"ClassificationTask.aevaluate\(\) needs an openai.AsyncOpenAI client",
    ),
    Case(
        "task-dataset-unknown-label",
        lambda _: fk.ClassificationTask(LABELS).dataset(["x"], ["fish"]),
        ValueError,
        "not among",
    ),
    Case(
        "task-classify_many-one-string",
        lambda k: fk.ClassificationTask(LABELS).classify_many(
            "one text", model="gpt-4o-mini", client=k.sync
        ),
        TypeError,
        "not one string",
    ),
    Case(
        "capabilities-of-a-string",
        lambda _: fk.capabilities(_any(x=URL)["x"]),
        TypeError,
        "client must be an openai.OpenAI",
    ),
    Case(
        "warm_up-model-none",
        lambda _: fk.warm_up(model=_any(x=None)["x"]),
        TypeError,
        "model must be",
    ),
]


@pytest.mark.parametrize("case", CLASSIFY_CASES, ids=lambda case: case.id)
def test_classify_argument_errors_name_the_argument(api: respx.Router, case: Case) -> None:
    route = api.route().respond(500)
    client = openai.OpenAI(api_key=KEY, base_url="https://api.test/v1", max_retries=0)
    async_client = openai.AsyncOpenAI(api_key=KEY, base_url="https://api.test/v1", max_retries=0)

    with pytest.raises(case.error, match=case.names):
        _run(case.call(Clients(client, async_client)))

    assert not route.called, "the mistake must be caught before any request"


def test_workers_are_capped_at_the_number_of_texts(
    api: respx.Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .classify_fakes import ok

    started: list[int] = []

    class Recording(ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            started.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr("finetune_kit.classification._many.ThreadPoolExecutor", Recording)
    api.post("/chat/completions").mock(return_value=ok("cat", top=[("cat", -0.1)]))
    client = openai.OpenAI(api_key=KEY, base_url="https://api.test/v1")

    results = fk.classify_many(
        ["a", "b", "c", "d", "e"],
        labels=LABELS,
        model="gpt-4o-mini",
        client=client,
        concurrency=10_000,
        progress=False,
    )

    assert len(results) == 5
    assert started == [4]  # the first text probes alone; the other four get a worker each
    assert check_concurrency(10_000, 5) == 5
    assert check_concurrency(3, 5) == 3
    assert check_concurrency(8, 0) == 1
