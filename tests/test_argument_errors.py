"""Wrong argument types and values fail at the call, with an error that names the argument.

One table per area, each a parametrized list: ``JOB_CASES`` for Job / AsyncJob / JobOptions,
``CLASSIFY_CASES`` for classification, evaluation and TunedModel. Rows run before any request
is made, except those that say otherwise (``wait(timeout=-1)`` polls once, then reports a
timeout); the classify rows use a client whose every request is refused by the mock, so a
case that got as far as sending fails the test.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import openai
import pytest
from openai.types.fine_tuning import FineTuningJob

import finetune_kit as fk
from finetune_kit import AsyncJob, Job, JobOptions, JobTimeoutError, RetryPolicy
from finetune_kit.classification._options import check_concurrency

from .fake_openai import FakeJobs, Sleeps, job_json

if TYPE_CHECKING:
    from collections.abc import Callable

    import respx


@dataclass
class Ctx:
    """What a row's call may use: clients and ready-made job handles (no request made)."""

    client: openai.OpenAI
    async_client: openai.AsyncOpenAI
    job: Job
    ajob: AsyncJob


CtxT = TypeVar("CtxT")


@dataclass(frozen=True)
class Case(Generic[CtxT]):
    """A call that must fail with ``error`` whose message contains ``match`` (literally)."""

    id: str
    call: Callable[[CtxT], Any]
    error: type[BaseException]
    match: str
    requests: bool = False  # the call may make requests before it fails


M = "gpt-4o-mini"


def bad(value: object) -> Any:
    """``value``, typed so that a row can pass what the signature does not allow."""
    return value


def _create(ctx: Ctx, training: Any = "file-train", **options: Any) -> Any:
    return Job.create(training, model=options.pop("model", M), client=ctx.client, **options)


def _on_both_jobs(
    id: str,
    call: Callable[[Job | AsyncJob], Any],
    error: type[BaseException],
    match: str,
    *,
    requests: bool = False,
) -> list[Case[Ctx]]:
    """One row on the Job handle and the same row (id ``async ...``) on the AsyncJob one."""
    return [
        Case(id, lambda c: call(c.job), error, match, requests),
        Case(f"async {id}", lambda c: call(c.ajob), error, match, requests),
    ]


# --- Job / AsyncJob / JobOptions ------------------------------------------------------------------

JOB_CASES: list[Case[Ctx]] = [
    Case("training None", lambda c: _create(c, None), TypeError, "training must be a Dataset"),
    Case("training int", lambda c: _create(c, 3), TypeError, "not int"),
    Case("training empty", lambda c: _create(c, ""), ValueError, "training must be a Dataset"),
    Case("training path str", lambda c: _create(c, "train.jsonl"), ValueError, "is a path"),
    Case("training dir path", lambda c: _create(c, "data/train"), ValueError, "from_jsonl"),
    Case("training existing file", lambda c: _create(c, __file__), ValueError, "is a path"),
    Case("training Path", lambda c: _create(c, Path("t.jsonl")), TypeError, "not a path"),
    Case("model None", lambda c: _create(c, model=None), TypeError, "model must be"),
    Case("model int", lambda c: _create(c, model=4), TypeError, "model must be"),
    Case("model empty", lambda c: _create(c, model=" "), ValueError, "model must be"),
    Case("method", lambda c: _create(c, method="lora"), ValueError, "method must be one of"),
    Case(
        "hyperparameters list",
        lambda c: _create(c, hyperparameters=[("n_epochs", 3)]),
        TypeError,
        "hyperparameters must be a mapping",
    ),
    Case("suffix long", lambda c: _create(c, suffix="x" * 65), ValueError, "suffix must be 1"),
    Case("suffix int", lambda c: _create(c, suffix=5), TypeError, "suffix must be a string"),
    Case("seed str", lambda c: _create(c, seed="7"), TypeError, "seed must be an int"),
    Case("seed bool", lambda c: _create(c, seed=True), TypeError, "seed must be an int"),
    Case(
        "metadata value",
        lambda c: _create(c, metadata={"team": 1}),
        TypeError,
        "metadata['team'] must be a string",
    ),
    Case("metadata list", lambda c: _create(c, metadata=["a"]), TypeError, "metadata must be"),
    Case("validation int", lambda c: _create(c, validation=1), TypeError, "validation must be"),
    Case(
        "validation path",
        lambda c: _create(c, validation="valid.jsonl"),
        ValueError,
        "validation='valid.jsonl' is a path",
    ),
    Case(
        "integrations str",
        lambda c: _create(c, integrations="wandb"),
        TypeError,
        "integrations must be a list",
    ),
    Case(
        "idempotency_key empty",
        lambda c: _create(c, idempotency_key=""),
        ValueError,
        "idempotency_key must be 1 to 512",
    ),
    Case(
        "async client to Job",
        lambda c: Job.create("file-train", model=M, client=bad(c.async_client)),
        TypeError,
        "use AsyncJob",
    ),
    Case("retry int", lambda c: _create(c, retry=5), TypeError, "retry must be a RetryPolicy"),
    Case(
        "options dict",
        lambda c: Job.create_from("file-train", bad({"model": M}), client=c.client),
        TypeError,
        "options must be a JobOptions",
    ),
    Case("JobOptions model", lambda _: JobOptions(model=bad(None)), TypeError, "model must be"),
    Case("get None", lambda c: Job.get(bad(None), client=c.client), TypeError, "job_id must be"),
    Case("get empty", lambda c: Job.get("", client=c.client), ValueError, "job_id must be"),
    Case("list limit 0", lambda c: Job.list(limit=0, client=c.client), ValueError, "limit"),
    Case("list limit str", lambda c: Job.list(limit=bad("5"), client=c.client), TypeError, "limit"),
    Case(
        "list metadata",
        lambda c: Job.list(metadata=bad({"a": 1}), client=c.client),
        TypeError,
        "metadata['a']",
    ),
    Case("wait poll 0", lambda c: c.job.wait(poll_interval=0), ValueError, "poll_interval"),
    Case("wait poll -1", lambda c: c.job.wait(poll_interval=-1), ValueError, "poll_interval"),
    Case("wait poll inf", lambda c: c.job.wait(poll_interval=math.inf), ValueError, "positive"),
    Case("wait poll str", lambda c: c.job.wait(poll_interval=bad("5")), TypeError, "poll_interval"),
    Case("wait timeout str", lambda c: c.job.wait(timeout=bad("9")), TypeError, "timeout must"),
    Case("wait timeout nan", lambda c: c.job.wait(timeout=math.nan), ValueError, "NaN"),
    Case("wait on_event", lambda c: c.job.wait(on_event=bad("print")), TypeError, "on_event"),
    *_on_both_jobs(
        "wait timeout -1",
        lambda job: job.wait(timeout=-1, progress=False),
        JobTimeoutError,
        "still running after -1s",
        requests=True,
    ),
    Case(
        "async training None",
        lambda c: AsyncJob.create(bad(None), model=M, client=c.async_client),
        TypeError,
        "training must be a Dataset",
    ),
    Case(
        "async training path",
        lambda c: AsyncJob.create("train.jsonl", model=M, client=c.async_client),
        ValueError,
        "is a path",
    ),
    Case(
        "sync client to AsyncJob",
        lambda c: AsyncJob.create("file-train", model=M, client=bad(c.client)),
        TypeError,
        "use Job",
    ),
    Case(
        "async list limit",
        lambda c: AsyncJob.list(limit=-2, client=c.async_client),
        ValueError,
        "limit",
    ),
    Case("async wait poll", lambda c: c.ajob.wait(poll_interval=0), ValueError, "poll_interval"),
]


async def _called(case: Case[CtxT], ctx: CtxT) -> object:
    result = case.call(ctx)
    return await result if inspect.isawaitable(result) else result


@pytest.mark.parametrize("case", JOB_CASES, ids=lambda case: case.id)
async def test_job_argument_errors(
    case: Case[Ctx],
    api: respx.Router,
    client: openai.OpenAI,
    async_client: openai.AsyncOpenAI,
    sleeps: Sleeps,
) -> None:
    fake = FakeJobs(api)
    fake.add(job_json(status="running"))
    raw = FineTuningJob.construct(**job_json(status="running"))
    policy: RetryPolicy = sleeps.policy()
    ctx = Ctx(
        client,
        async_client,
        Job(raw, client=client, retry=policy),
        AsyncJob(raw, client=async_client, retry=policy),
    )
    with pytest.raises(case.error, match=re.escape(case.match)):
        await _called(case, ctx)
    if not case.requests:
        assert not api.calls, "the argument was sent to the service before it was checked"


# --- classification, evaluation, TunedModel ----------------------------------------

LABELS = ["cat", "dog"]
URL = "http://127.0.0.1:9/v1"
KEY = "sk-test-not-a-real-key"


@dataclass(frozen=True)
class Clients:
    """A sync and an async client aimed at the mock."""

    sync: openai.OpenAI
    aio: openai.AsyncOpenAI


def _any(**kwargs: Any) -> Any:
    # Wrong types on purpose: the type checker would refuse them, the library must too.
    return kwargs


CLASSIFY_CASES: list[Case[Clients]] = [
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
        "classify() needs an openai.OpenAI client, not str",
    ),
    Case(
        "classify-async-client",
        lambda k: fk.classify("x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.aio)),
        TypeError,
        "needs an openai.OpenAI client, not AsyncOpenAI",
    ),
    Case(
        "aclassify-sync-client",
        lambda k: fk.aclassify("x", **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync)),
        TypeError,
        "aclassify() needs an openai.AsyncOpenAI client, not OpenAI",
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
        "examples[0] must be a (text, label) pair",
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
        "texts[1] is empty",
    ),
    Case(
        "classify_many-sync-client-async",
        lambda k: fk.aclassify_many(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync)
        ),
        TypeError,
        "aclassify_many() needs an openai.AsyncOpenAI client",
    ),
    Case(
        "classify_many-unknown-keyword",
        lambda k: fk.classify_many(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, temprature=0)
        ),
        TypeError,
        "classify_many() got an unexpected keyword argument 'temprature'",
    ),
    Case(
        "aclassify_many-reasks-negative",
        lambda k: fk.aclassify_many(
            ["x"], labels=LABELS, model="gpt-4o-mini", client=k.aio, reasks=-1
        ),
        ValueError,
        "reasks cannot be negative",
    ),
    Case(
        "classify_batch-unknown-keyword",
        lambda k: fk.classify_batch(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, concurrency=4)
        ),
        TypeError,
        "classify_batch() got an unexpected keyword argument 'concurrency'",
    ),
    Case(
        "classify_batch-retry-string",
        lambda k: fk.classify_batch(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync, retry="fast")
        ),
        TypeError,
        "retry must be a RetryPolicy",
    ),
    Case(
        "classify_batch-model-none",
        lambda k: fk.classify_batch(["x"], **_any(labels=LABELS, model=None, client=k.sync)),
        TypeError,
        "model must be",
    ),
    Case(
        "classify_batch-client-url",
        lambda _: fk.classify_batch(["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=URL)),
        TypeError,
        "classify_batch() needs an openai.OpenAI client, not str",
    ),
    Case(
        "aclassify_batch-sync-client",
        lambda k: fk.aclassify_batch(
            ["x"], **_any(labels=LABELS, model="gpt-4o-mini", client=k.sync)
        ),
        TypeError,
        "aclassify_batch() needs an openai.AsyncOpenAI client, not OpenAI",
    ),
    Case(
        "tuned-model-async-client",
        lambda k: fk.TunedModel("ft:gpt-4o-mini:x", client=_any(x=k.aio)["x"]),
        TypeError,
        "TunedModel() needs an openai.OpenAI client, not AsyncOpenAI",
    ),
    Case(
        "async-tuned-model-sync-client",
        lambda k: fk.AsyncTunedModel("ft:gpt-4o-mini:x", client=_any(x=k.sync)["x"]),
        TypeError,
        "AsyncTunedModel() needs an openai.AsyncOpenAI client, not OpenAI",
    ),
    Case(
        "tuned-model-unknown-origin",
        lambda _: fk.AsyncTunedModel("ft:gpt-4o-mini:x", **_any(job="ftjob-1")),
        TypeError,
        "AsyncTunedModel() got an unexpected keyword argument 'job'",
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
        "ClassificationTask.classify() needs an openai.OpenAI client",
    ),
    Case(
        "task-aevaluate-sync-client",
        lambda k: fk.ClassificationTask(LABELS).aevaluate(
            [{"text": "x", "label": "cat"}], **_any(model="gpt-4o-mini", client=k.sync)
        ),
        TypeError,
        "ClassificationTask.aevaluate() needs an openai.AsyncOpenAI client",
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
async def test_classify_argument_errors_name_the_argument(
    api: respx.Router, case: Case[Clients]
) -> None:
    route = api.route().respond(500)
    client = openai.OpenAI(api_key=KEY, base_url="https://api.test/v1", max_retries=0)
    async_client = openai.AsyncOpenAI(api_key=KEY, base_url="https://api.test/v1", max_retries=0)

    with pytest.raises(case.error, match=re.escape(case.match)):
        await _called(case, Clients(client, async_client))

    assert not route.called, "the mistake must be caught before any request"


def test_workers_are_capped_at_the_number_of_texts(
    api: respx.Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .fake_openai import ok

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
