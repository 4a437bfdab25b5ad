"""classify_batch(): exactly one input file and one batch, reused after a crash, cleaned up.

Wiring tests over respx (``fake_openai.FakeBatchService``); the same guarantees end to end
against the local backend are in ``test_batch_local.py``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import (
    ClassificationError,
    RetryPolicy,
    aclassify_batch,
    classify_batch,
)
from finetune_kit.classification import _batch
from finetune_kit.classification._batch_submit import (
    IDEMPOTENCY_METADATA_KEY,
    PART_METADATA_KEY,
    derive_key,
)
from finetune_kit.classification._classify import forget_capabilities

from .classify_calls import abatch, batch
from .fake_openai import BatchFault, Crash, FakeBatchService, labels_of, ok

if TYPE_CHECKING:
    import openai
    import respx

    from finetune_kit.classification._classify import ItemResult

    from .fake_openai import Sleeps

LABELS = ["cat", "dog", "bird"]
TEXTS = ["a cat", "a dog", "a bird"]
FAULTS: list[BatchFault] = ["drop_after", "500_after", "drop", "500"]


pytestmark = pytest.mark.usefixtures("fresh_capabilities")


def _run(
    client: openai.OpenAI, policy: RetryPolicy, *, texts: list[str] = TEXTS, **options: Any
) -> list[ItemResult]:
    return batch(client, texts, retry=policy, **{"technique": "logit_bias", **options})


async def _arun(
    client: openai.AsyncOpenAI, policy: RetryPolicy, **options: Any
) -> list[ItemResult]:
    return await abatch(client, TEXTS, retry=policy, **{"technique": "logit_bias", **options})


# --- exactly once under lost replies ------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", ["upload", "create"])
def test_one_file_and_one_batch_whatever_reply_is_lost(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, step: str, fault: BatchFault
) -> None:
    fake = FakeBatchService(api)
    fake.faults[step] = [fault]

    results = _run(client, policy)

    assert labels_of(results) == ["cat", "dog", "bird"]
    assert len(fake.inputs) == 1
    assert len(fake.batches) == 1


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", ["upload", "create"])
async def test_async_one_file_and_one_batch_whatever_reply_is_lost(
    api: respx.Router,
    async_client: openai.AsyncOpenAI,
    policy: RetryPolicy,
    step: str,
    fault: BatchFault,
) -> None:
    fake = FakeBatchService(api)
    fake.faults[step] = [fault]

    results = await _arun(async_client, policy)

    assert labels_of(results) == ["cat", "dog", "bird"]
    assert len(fake.inputs) == 1
    assert len(fake.batches) == 1


@pytest.mark.parametrize("skew", [-86_400.0, 86_400.0])
def test_exactly_once_does_not_depend_on_the_service_clock(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, skew: float
) -> None:
    # The service's clock a day off the client's: matching is by key, never by timestamps.
    fake = FakeBatchService(api, server_time=time.time() + skew)
    fake.faults["upload"] = ["drop_after"]
    fake.faults["create"] = ["drop_after"]

    assert labels_of(_run(client, policy)) == ["cat", "dog", "bird"]
    assert (len(fake.inputs), len(fake.batches)) == (1, 1)


def test_each_batch_carries_the_key_and_its_part(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_batch, "MAX_REQUESTS", 2)
    fake = FakeBatchService(api)
    fake.faults["create"] = ["drop_after", "drop", "500_after"]

    _run(client, policy, keep_files=True)

    keys = {c["metadata"][IDEMPOTENCY_METADATA_KEY] for c in fake.created}
    contents = [fake.files[f"file-in-{n}"] for n in range(2)]
    assert keys == {derive_key("gpt-4o-mini", contents)}
    parts = [b["metadata"][PART_METADATA_KEY] for b in fake.batches.values()]
    assert parts == ["1-of-2", "2-of-2"]
    assert len(fake.inputs) == 2


def test_derived_key_follows_the_requests() -> None:
    one = derive_key("gpt-4o-mini", [b"a\n", b"b\n"])
    assert derive_key("gpt-4o-mini", [b"a\n", b"b\n"]) == one
    assert derive_key("gpt-4o", [b"a\n", b"b\n"]) != one
    assert derive_key("gpt-4o-mini", [b"a\n", b"c\n"]) != one
    assert derive_key("gpt-4o-mini", [b"a\nb\n"]) != one
    assert len(one) <= 64


# --- a re-run after a crash pays nothing twice ---------------------------------------------------


def _crash_while_waiting(client: openai.OpenAI, *, idempotency_key: str | None = None) -> None:
    def die(seconds: float) -> None:
        raise Crash(seconds)

    with pytest.raises(Crash):
        _run(client, RetryPolicy(sleep=die), idempotency_key=idempotency_key)


def test_a_rerun_after_a_crash_reuses_the_batch(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api, polls_until_done=1, page_size=1)
    _crash_while_waiting(client)
    # Another call's batch, newer than ours: the look-up pages past it.
    _run(client, policy, texts=["a dog"], keep_files=True)
    assert len(fake.batches) == 2
    forget_capabilities()  # a new process: nothing in memory

    results = _run(client, policy)

    assert labels_of(results) == ["cat", "dog", "bird"]
    assert len(fake.batches) == 2
    assert len(fake.inputs) == 2
    assert fake.deleted[0] == "file-in-0"


def test_look_ups_end_on_a_server_that_ignores_paging(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api, page_size=1, ignores_paging=True)
    _run(client, policy, texts=["a dog"], keep_files=True)
    fake.faults["upload"] = ["drop_after"]
    fake.faults["create"] = ["drop_after"]

    assert labels_of(_run(client, policy)) == ["cat", "dog", "bird"]
    # The look-ups end; the newest batch and file, the lost replies', are on the first page.
    assert (len(fake.inputs), len(fake.batches)) == (2, 2)


async def test_async_rerun_after_a_crash_reuses_the_batch(
    api: respx.Router, client: openai.OpenAI, async_client: openai.AsyncOpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    _crash_while_waiting(client)

    results = await _arun(async_client, policy)

    assert labels_of(results) == ["cat", "dog", "bird"]
    assert (len(fake.inputs), len(fake.batches)) == (1, 1)


@pytest.mark.parametrize(
    ("first_run", "new_process", "probes"),
    [
        # A crash, then a new process that probes the model again: the probe must not change
        # what is sent, or the derived key would differ and the batch be paid for twice.
        pytest.param("crash", True, 2, id="crash-then-new-process-probes-again"),
        # A timeout, then a re-run in the same process, which knows the model: no probe, and
        # the batch the probing run made all the same.
        pytest.param("timeout", False, 1, id="timeout-then-same-process-no-probe"),
    ],
)
def test_a_rerun_finds_the_batch_the_probing_run_made(
    api: respx.Router,
    client: openai.OpenAI,
    policy: RetryPolicy,
    first_run: str,
    new_process: bool,
    probes: int,
) -> None:
    live = api.post("/chat/completions").mock(return_value=ok("cat", top=[("cat", -0.1)]))
    fake = FakeBatchService(api, polls_until_done=10)

    def die(seconds: float) -> None:
        raise Crash(seconds)

    if first_run == "crash":
        first: dict[str, Any] = {"retry": RetryPolicy(sleep=die)}
    else:
        first = {"retry": policy, "timeout": 1.0}
    with pytest.raises(Crash if first_run == "crash" else TimeoutError):
        batch(client, TEXTS, **first)
    if new_process:
        forget_capabilities()  # nothing in memory: the model is probed again
    results = batch(client, TEXTS, retry=policy)

    assert labels_of(results) == ["cat", "dog", "bird"]
    assert live.call_count == probes
    assert (len(fake.inputs), len(fake.batches)) == (1, 1)


def test_a_crash_between_upload_and_create_reuses_the_file(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    fake.faults["create"] = ["500"]
    with pytest.raises(Exception, match="server had an error"):
        _run(client, RetryPolicy.none())

    assert labels_of(_run(client, policy)) == ["cat", "dog", "bird"]
    assert (len(fake.inputs), len(fake.batches)) == (1, 1)


def test_an_explicit_key_is_used_and_a_new_one_pays_again(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    _crash_while_waiting(client, idempotency_key="run-1")

    _run(client, policy, idempotency_key="run-1")
    assert len(fake.batches) == 1
    assert fake.created[0]["metadata"][IDEMPOTENCY_METADATA_KEY] == "run-1"
    _run(client, policy, idempotency_key="run-2")
    assert len(fake.batches) == 2


def test_a_key_given_for_other_requests_is_refused_while_its_batch_is_unread(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    _crash_while_waiting(client, idempotency_key="nightly")

    with pytest.raises(ValueError, match="'nightly' already names batch batch_0"):
        _run(client, policy, texts=["a bird"], idempotency_key="nightly")
    assert len(fake.inputs) == 1

    _run(client, policy, idempotency_key="nightly")  # reads and cleans up batch_0
    assert labels_of(_run(client, policy, texts=["a bird"], idempotency_key="nightly")) == ["bird"]
    assert len(fake.batches) == 2


@pytest.mark.parametrize("key", ["", "k" * 513])
def test_a_key_that_cannot_be_metadata_is_refused(
    api: respx.Router, client: openai.OpenAI, key: str
) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        classify_batch(
            TEXTS, labels=LABELS, model="gpt-4o-mini", client=client, idempotency_key=key
        )
    assert not api.calls


def test_results_read_and_cleaned_up_are_not_reused(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    _run(client, policy)

    assert labels_of(_run(client, policy)) == ["cat", "dog", "bird"]
    assert len(fake.batches) == 2


def test_kept_results_are_read_again_for_free(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    first = _run(client, policy, keep_files=True)

    again = _run(client, policy, keep_files=True)

    assert labels_of(again) == labels_of(first) == ["cat", "dog", "bird"]
    assert (len(fake.inputs), len(fake.batches)) == (1, 1)


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_a_batch_that_ended_without_results_is_not_reused(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, outcome: str
) -> None:
    fake = FakeBatchService(api, outcome=outcome)
    _run(client, policy, keep_files=True)
    fake.outcome = "completed"

    assert labels_of(_run(client, policy, keep_files=True)) == ["cat", "dog", "bird"]
    assert len(fake.batches) == 2


# --- clean-up ------------------------------------------------------------------------------------


def test_batch_files_are_deleted_once_read(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)

    results = _run(client, policy, texts=["a cat", "boom"])

    assert labels_of(results) == ["cat", None]
    assert fake.deleted == ["file-in-0", "file-output-batch_0", "file-error-batch_0"]
    assert fake.files == {}


async def test_async_batch_files_are_deleted_once_read(
    api: respx.Router, async_client: openai.AsyncOpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)
    await _arun(async_client, policy)
    assert fake.files == {}


def test_keep_files_keeps_them(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api)

    _run(client, policy, texts=["a cat", "boom"], keep_files=True)

    assert fake.deleted == []
    assert len(fake.stored("batch")) == 1
    assert len(fake.stored("batch_output")) == 2


def test_a_failed_deletion_is_logged_not_raised(
    api: respx.Router, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeBatchService(api)
    fake.faults["delete"] = ["500"]

    with caplog.at_level(logging.WARNING, logger="finetune_kit"):
        results = _run(client, RetryPolicy(max_attempts=1, sleep=lambda _: None))

    assert labels_of(results) == ["cat", "dog", "bird"]
    assert "could not delete file file-in-0 of batch batch_0" in caplog.text
    assert fake.deleted == ["file-output-batch_0"]


def test_a_lost_delete_reply_is_not_an_error(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeBatchService(api)
    fake.faults["delete"] = ["drop_after"]

    with caplog.at_level(logging.WARNING, logger="finetune_kit"):
        _run(client, policy)

    assert fake.files == {}
    assert "could not delete" not in caplog.text


def test_a_batch_still_running_at_the_timeout_keeps_its_files(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake = FakeBatchService(api, polls_until_done=10)

    with pytest.raises(TimeoutError, match="same texts and options"):
        _run(client, policy, timeout=10.0, poll_interval=5.0)

    assert fake.deleted == []
    assert labels_of(_run(client, policy, poll_interval=5.0)) == ["cat", "dog", "bird"]
    assert len(fake.batches) == 1


# --- the deadline is read from the clock ---------------------------------------------------------


def test_the_timeout_is_read_from_the_clock(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    def slow_reply() -> None:
        sleeps.now += 10.0  # each status check takes 10 s of the caller's time

    FakeBatchService(api, polls_until_done=100, on_poll=slow_reply)

    with pytest.raises(TimeoutError, match="after 70s"):
        _run(client, policy, timeout=60.0, poll_interval=30.0)

    # 10 s (check) + 30 + 10 (check) + 10 (the time left) + 10 (check): 70 s > 60 s.
    assert sleeps.waits == [30.0, 10.0]


async def test_async_timeout_is_read_from_the_clock(
    api: respx.Router, async_client: openai.AsyncOpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    def slow_reply() -> None:
        sleeps.now += 10.0

    FakeBatchService(api, polls_until_done=100, on_poll=slow_reply)

    with pytest.raises(TimeoutError, match="after 70s"):
        await _arun(async_client, policy, timeout=60.0, poll_interval=30.0)

    assert sleeps.waits == [30.0, 10.0]


# --- inputs and partial failures -----------------------------------------------------------------


def test_a_bare_string_is_refused(api: respx.Router, client: openai.OpenAI) -> None:
    with pytest.raises(TypeError, match="single string"):
        classify_batch("a cat", labels=LABELS, model="gpt-4o-mini", client=client)
    assert not api.calls


async def test_async_a_bare_string_is_refused(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(TypeError, match="single string"):
        await aclassify_batch("a cat", labels=LABELS, model="gpt-4o-mini", client=async_client)
    assert not api.calls


def test_failures_stay_in_place_across_batches(
    api: respx.Router, client: openai.OpenAI, policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_batch, "MAX_REQUESTS", 2)
    FakeBatchService(api)

    results = _run(client, policy, texts=["boom", "a cat", "a dog", "boom", "a bird"])

    assert labels_of(results) == [None, "cat", "dog", None, "bird"]
    for index in (0, 3):
        failure = results[index]
        assert isinstance(failure, ClassificationError)
        assert f"text {index}: HTTP 500" in str(failure)
