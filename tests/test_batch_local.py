"""classify_batch() end to end against the local backend: lost replies, crashes, clean-up.

The real ``openai`` client talks to a :class:`~finetune_kit.local.LocalServer` over loopback
HTTP, with :class:`~finetune_kit.local.Faults` dropping replies after the service acted. The
server and the library share a manual clock (the library's waits advance it), except where a
test sets the service's clock a day off on purpose.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from finetune_kit import Classification, RetryPolicy, aclassify_batch, classify_batch
from finetune_kit.classification._batch_submit import IDEMPOTENCY_METADATA_KEY
from finetune_kit.classification._classify import forget_capabilities
from finetune_kit.local import FaultRule, Faults, LocalServer, ManualClock

from .fake_openai import Crash, labels_of

if TYPE_CHECKING:
    import openai

    from finetune_kit.local import FaultKind

    from .conftest import RecordingClock

MODEL = "gpt-4o-mini"
LABELS = ["coding", "trivia", "emotion"]
TEXTS = [
    "How do I reverse a list in Python?",
    "What is the capital of Australia?",
    "I feel so happy today!",
    "Why does my code throw a KeyError?",
]


pytestmark = pytest.mark.usefixtures("fresh_capabilities")


def _lost_replies(kind: FaultKind) -> Faults:
    """The service acts on the first upload and the first batch create, and the reply is lost."""
    return Faults(
        [FaultRule(kind, "/files", "POST", first=1), FaultRule(kind, "/batches", "POST", first=1)]
    )


def _classify(
    client: openai.OpenAI,
    policy: RetryPolicy,
    *,
    keep_files: bool = False,
    timeout: float | None = None,
) -> list[str | None]:
    results = classify_batch(
        TEXTS,
        labels=LABELS,
        model=MODEL,
        client=client,
        progress=False,
        poll_interval=1.0,
        retry=policy,
        keep_files=keep_files,
        timeout=timeout,
    )
    assert len(results) == len(TEXTS)
    assert all(isinstance(r, Classification) for r in results), results
    return labels_of(results)


def _batch_files(client: openai.OpenAI) -> list[str]:
    return [f.purpose for f in client.files.list().data if f.purpose.startswith("batch")]


def _assert_one_batch_and_no_files(client: openai.OpenAI) -> None:
    """Exactly one batch was created, and its files were deleted once read."""
    assert len(client.batches.list().data) == 1
    assert _batch_files(client) == []


@pytest.mark.parametrize("kind", ["drop_after", "error_after"])
def test_lost_replies_make_one_file_and_one_batch(clock: RecordingClock, kind: FaultKind) -> None:
    with LocalServer(clock=clock, faults=_lost_replies(kind), in_process=True) as server:
        client = server.client(max_retries=0)

        labels = _classify(client, clock.policy(), keep_files=True)

        assert set(labels) <= set(LABELS)
        (batch,) = client.batches.list().data
        assert batch.metadata is not None
        assert batch.metadata[IDEMPOTENCY_METADATA_KEY].startswith("ftkb1-")
        assert sorted(_batch_files(client)) == ["batch", "batch_output"]


async def test_async_lost_replies_make_one_file_and_one_batch(clock: RecordingClock) -> None:
    with LocalServer(clock=clock, faults=_lost_replies("drop_after"), in_process=True) as server:
        async with server.async_client(max_retries=0) as async_client:
            results = await aclassify_batch(
                TEXTS,
                labels=LABELS,
                model=MODEL,
                client=async_client,
                progress=False,
                poll_interval=1.0,
                retry=clock.policy(),
            )
        client = server.client(max_retries=0)

        assert all(isinstance(r, Classification) for r in results)
        _assert_one_batch_and_no_files(client)


@pytest.mark.parametrize("skew", [-86_400.0, 86_400.0])
def test_a_service_clock_a_day_off_changes_nothing(skew: float) -> None:
    # The service's clock a day away from this machine's (real) clock; waits advance it.
    service_clock = ManualClock(start=time.time() + skew)
    policy = RetryPolicy(max_attempts=8, jitter=0.0, sleep=service_clock.sleep, clock=service_clock)
    with LocalServer(
        clock=service_clock, faults=_lost_replies("drop_after"), in_process=True
    ) as server:
        client = server.client(max_retries=0)

        _classify(client, policy)

        _assert_one_batch_and_no_files(client)


def test_files_are_deleted_once_the_results_are_read(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    client = clocked_server.client(max_retries=0)

    _classify(client, clock.policy())

    (batch,) = client.batches.list().data
    assert batch.status == "completed"
    assert _batch_files(client) == []


def test_a_rerun_after_a_crash_reuses_the_batch(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    def die(seconds: float) -> None:
        raise Crash(seconds)

    with pytest.raises(Crash):
        _classify(clocked_server.client(max_retries=0), RetryPolicy(sleep=die))
    clock.advance(5.0)  # the batch finishes while no process watches it
    forget_capabilities()  # a new process: nothing in memory
    client = clocked_server.client(max_retries=0)

    labels = _classify(client, clock.policy())

    assert set(labels) <= set(LABELS)
    _assert_one_batch_and_no_files(client)


def test_a_rerun_after_a_timeout_picks_the_batch_up(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    client = clocked_server.client(max_retries=0)
    with pytest.raises(TimeoutError):
        _classify(client, clock.policy(), timeout=0.5)

    _classify(client, clock.policy())

    _assert_one_batch_and_no_files(client)
