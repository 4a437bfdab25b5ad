"""Wrong argument types and values fail at the call, with an error that names the argument.

One table per area, each a clearly named parametrized list: ``JOB_CASES`` for Job / AsyncJob /
JobOptions. A row is (id, call, expected error, text the message must contain). Rows run
before any request is made, except those that say otherwise (``wait(timeout=-1)`` polls once,
then reports a timeout).
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from openai.types.fine_tuning import FineTuningJob

from finetune_kit import AsyncJob, Job, JobOptions, JobTimeoutError, RetryPolicy

from .sdk_fakes import FakeJobs, Sleeps, job_json

if TYPE_CHECKING:
    from collections.abc import Callable

    import openai
    import respx


@dataclass
class Ctx:
    """What a row's call may use: clients and ready-made job handles (no request made)."""

    client: openai.OpenAI
    async_client: openai.AsyncOpenAI
    job: Job
    ajob: AsyncJob


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[Ctx], Any]
    error: type[BaseException]
    match: str
    requests: bool = False  # the call may make requests before it fails


M = "gpt-4o-mini"


def bad(value: object) -> Any:
    """``value``, typed so that a row can pass what the signature does not allow."""
    return value


def _create(ctx: Ctx, training: Any = "file-train", **options: Any) -> Any:
    return Job.create(training, model=options.pop("model", M), client=ctx.client, **options)


# --- Job / AsyncJob / JobOptions ------------------------------------------------------------------

JOB_CASES = [
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
    Case(
        "wait timeout -1",
        lambda c: c.job.wait(timeout=-1, progress=False),
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
    Case(
        "async wait timeout -1",
        lambda c: c.ajob.wait(timeout=-1, progress=False),
        JobTimeoutError,
        "still running after -1s",
        requests=True,
    ),
]


async def _called(case: Case, ctx: Ctx) -> object:
    result = case.call(ctx)
    return await result if inspect.isawaitable(result) else result


@pytest.mark.parametrize("case", JOB_CASES, ids=lambda case: case.id)
async def test_job_argument_errors(
    case: Case,
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
