"""Job.get/list/events/checkpoints/metrics/wait/cancel/pause/resume against a fake service."""

from __future__ import annotations

import base64
import logging
import threading
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from finetune_kit import (
    Event,
    Job,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    RetryPolicy,
)

from .fake_openai import FakeJobs, Fault, Sleeps, error_response, event_json, job_json, page

if TYPE_CHECKING:
    import respx

CSV = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n1,2.0,0.4,2.1,0.4\n"


def _get(fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, **job: Any) -> Job:
    fake.add(job_json(**job))
    return Job.get(job.get("job_id", "ftjob-1"), client=client, retry=policy)


def test_get_and_properties(fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy) -> None:
    job = _get(
        fake,
        client,
        policy,
        status="succeeded",
        fine_tuned_model="ft:gpt-4o-mini:org::abc",
        trained_tokens=1234,
        hyperparameters={"n_epochs": 3},
    )
    assert (job.id, job.status, job.model) == ("ftjob-1", "succeeded", "gpt-4o-mini-2024-07-18")
    assert job.fine_tuned_model == "ft:gpt-4o-mini:org::abc"
    assert job.trained_tokens == 1234
    assert job.error is None
    assert job.method == "supervised"
    assert job.hyperparameters == {"n_epochs": 3}
    assert job.raw.id == "ftjob-1"
    assert repr(job) == "Job('ftjob-1', status='succeeded', model='gpt-4o-mini-2024-07-18')"


def test_unknown_job_id_raises_not_found_without_retrying(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    with pytest.raises(openai.NotFoundError):
        Job.get("ftjob-nope", client=client, retry=policy)
    assert fake.calls["retrieve"] == 1
    assert sleeps.waits == []


def test_sdk_type_gaps_arrive_intact(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    job = _get(
        fake,
        client,
        policy,
        status="paused",
        hyperparameters=None,
        error={"code": None, "message": None, "param": None},
        method={"type": "reinforcement", "reinforcement": {"hyperparameters": None}},
    )
    assert job.status == "paused"
    assert job.error is None
    assert job.hyperparameters == {}
    assert job.method == "reinforcement"


@pytest.mark.parametrize("status", ["paused", "a_status_from_the_future"])
def test_unknown_status_literals_are_kept_by_both_sdk_majors(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, status: str
) -> None:
    # openai 2.x and 3.x build response models without validating them (construct), so a
    # status outside their Literal arrives as the plain string instead of raising.
    job = _get(fake, client, policy, status=status)
    assert job.raw.status == status
    assert job.status == status


def test_list_follows_pages_and_filters(api: respx.Router, client: openai.OpenAI) -> None:
    first = page([job_json(f"ftjob-{i}") for i in range(100)], has_more=True)
    second = page([job_json("ftjob-100")])
    route = api.get("/fine_tuning/jobs").mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
    )
    jobs = list(Job.list(metadata={"team": "a"}, client=client))
    assert len(jobs) == 101
    assert route.calls[0].request.url.params["metadata[team]"] == "a"
    assert route.calls[1].request.url.params["after"] == "ftjob-99"
    route.side_effect = [httpx.Response(200, json=first)]
    assert [j.id for j in Job.list(limit=2, client=client)] == ["ftjob-0", "ftjob-1"]
    assert route.calls[-1].request.url.params["limit"] == "2"


def test_events_follow_pagination_in_time_order(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    events = [event_json(f"ev-{i}", 1000 + i // 3) for i in range(250)]
    fake.add(job_json(status="running"), list(reversed(events)))
    job = Job.get("ftjob-1", client=client, retry=policy)
    got = job.events()
    assert [e.id for e in got] == [f"ev-{i}" for i in range(250)]
    assert fake.calls["events"] == 3


def test_events_retry_a_failed_page(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.add(job_json(status="running"), [event_json("b", 2), event_json("a", 1)])
    fake.faults["events"] = [Fault(response=error_response(503))]
    job = Job.get("ftjob-1", client=client, retry=policy)
    assert [e.id for e in job.events()] == ["a", "b"]
    assert sleeps.waits == [0.5]


def test_checkpoints_sorted_by_step(api: respx.Router, client: openai.OpenAI) -> None:
    def checkpoint(step: int) -> dict[str, Any]:
        return {
            "id": f"ftckpt-{step}",
            "object": "fine_tuning.job.checkpoint",
            "created_at": step,
            "fine_tuned_model_checkpoint": f"ft:gpt-4o-mini:org::abc:ckpt-step-{step}",
            "fine_tuning_job_id": "ftjob-1",
            "metrics": {"step": step, "full_valid_loss": 1.0 / step},
            "step_number": step,
        }

    api.get("/fine_tuning/jobs/ftjob-1").mock(
        return_value=httpx.Response(200, json=job_json(status="succeeded"))
    )
    api.get("/fine_tuning/jobs/ftjob-1/events").mock(
        return_value=httpx.Response(200, json=page([]))
    )
    api.get("/fine_tuning/jobs/ftjob-1/checkpoints").mock(
        return_value=httpx.Response(
            200, json=page([checkpoint(30), checkpoint(20), checkpoint(10)])
        )
    )
    job = Job.get("ftjob-1", client=client)
    checkpoints = job.checkpoints()
    assert [c.step for c in checkpoints] == [10, 20, 30]
    assert checkpoints[0].model.endswith("ckpt-step-10")
    summary = job.metrics_summary()  # no result file, no events: no rows
    assert summary.best_checkpoint is not None
    assert summary.best_checkpoint.step == 30


@pytest.mark.parametrize("encode", [False, True])
def test_metrics_from_the_result_file(
    fake: FakeJobs, api: respx.Router, client: openai.OpenAI, encode: bool
) -> None:
    body = base64.b64encode(CSV.encode()) if encode else CSV.encode()
    api.get("/files/file-res/content").mock(return_value=httpx.Response(200, content=body))
    fake.add(job_json(status="succeeded", result_files=["file-res"]))
    rows = Job.get("ftjob-1", client=client).metrics()
    assert [(r.step, r.train_loss, r.valid_loss) for r in rows] == [(1, 2.0, 2.1)]


def test_metrics_from_events_while_running_and_when_the_file_is_garbage(
    fake: FakeJobs, api: respx.Router, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    events = [
        event_json("m2", 20, data={"step": 2, "train_loss": 1.0}),
        event_json("m1", 10, data={"step": 1, "train_loss": 2.0}),
    ]
    fake.add(job_json(status="running"), events)
    assert [r.step for r in Job.get("ftjob-1", client=client).metrics()] == [1, 2]
    api.get("/files/file-bad/content").mock(return_value=httpx.Response(200, content=b"<html>"))
    fake.jobs["ftjob-1"]["result_files"] = ["file-bad"]
    with caplog.at_level(logging.WARNING, logger="finetune_kit"):
        assert [r.step for r in Job.get("ftjob-1", client=client).metrics()] == [1, 2]
    assert "file-bad" in caplog.text


def test_cancel_pause_resume(fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy) -> None:
    job = _get(fake, client, policy, status="running")
    assert job.pause().status == "paused"
    assert job.resume().status == "queued"
    assert job.cancel().status == "cancelled"
    assert job.refresh().status == "cancelled"


def test_a_lost_cancel_reply_is_not_sent_again(
    fake: FakeJobs,
    client: openai.OpenAI,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = _get(fake, client, policy, status="running")
    fake.faults["cancel"] = [Fault(error=httpx.ConnectError("reset"), after=True)]
    with caplog.at_level(logging.WARNING, logger="finetune_kit"):
        assert job.cancel().status == "cancelled"
    assert fake.calls["cancel"] == 1
    assert "earlier attempt took effect (ftjob-1)" in caplog.text


def test_a_failed_pause_is_sent_again(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    job = _get(fake, client, policy, status="running")
    fake.faults["pause"] = [Fault(response=error_response(502))]
    assert job.pause().status == "paused"
    assert fake.calls["pause"] == 2


# --- wait() ---------------------------------------------------------------------------------


def _script(fake: FakeJobs, steps: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """On the n-th retrieve from now on, set the job's status and add events (oldest first)."""
    served = [0]

    def advance(job: dict[str, Any], calls: int) -> None:
        del calls
        served[0] += 1
        n = served[0]
        status, new = steps[min(n, len(steps)) - 1]
        job["status"] = status
        if status == "succeeded":
            job["fine_tuned_model"] = "ft:gpt-4o-mini:org:tickets:abc"
        if status == "failed":
            job["error"] = {
                "code": "invalid_training_file",
                "message": "line 3 has no assistant message",
                "param": "training_file",
            }
        if n <= len(steps):
            fake.events[job["id"]][:0] = list(reversed(new))

    fake.on_retrieve = advance


def _metrics(step: int, at: int) -> dict[str, Any]:
    return event_json(
        f"m{step}", at, data={"step": step, "total_steps": 10, "train_loss": 1.0 / step}
    )


def test_wait_returns_the_tuned_model_and_reports_each_event_once(
    fake: FakeJobs,
    client: openai.OpenAI,
    policy: RetryPolicy,
    sleeps: Sleeps,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.add(job_json(status="queued", estimated_finish=2_000_000_000), [event_json("e0", 1)])
    job = Job.get("ftjob-1", client=client, retry=policy)
    _script(
        fake,
        [
            ("running", [event_json("e1", 2), _metrics(1, 3)]),
            ("running", [_metrics(5, 4)]),
            ("running", []),
            ("paused", []),
            ("running", []),
            ("succeeded", [event_json("done", 9)]),
        ],
    )
    seen: list[Event] = []
    threads = threading.active_count()
    tuned = job.wait(poll_interval=5, on_event=seen.append)
    # No thread outlives the bar (a running thread would stop Dataset checking in parallel).
    assert threading.active_count() == threads
    assert [e.id for e in seen] == ["e0", "e1", "m1", "m5", "done"]
    assert tuned.name == "ft:gpt-4o-mini:org:tickets:abc"
    assert tuned.job_id == "ftjob-1"
    assert tuned.base_model == "gpt-4o-mini-2024-07-18"
    assert job.status == "succeeded"
    # Backoff while nothing changes; back to the interval when something does.
    assert sleeps.waits == [5, 5, 7.5, 5, 5]
    bar = capsys.readouterr().err
    assert "5/10" in bar
    assert "loss 0.2000" in bar
    assert "ETA" in bar


def test_wait_without_progress_prints_nothing(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(job_json(status="running"))
    job = Job.get("ftjob-1", client=client, retry=policy)
    _script(fake, [("running", [_metrics(1, 1)]), ("succeeded", [])])
    job.wait(progress=False)
    assert capsys.readouterr() == ("", "")


def test_wait_fetches_only_new_events(
    fake: FakeJobs, api: respx.Router, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    history = [event_json(f"old-{i}", i) for i in range(150)]
    fake.add(job_json(status="running"), list(reversed(history)))
    job = Job.get("ftjob-1", client=client, retry=policy)
    _script(fake, [("running", []), ("running", [event_json("new", 500)]), ("succeeded", [])])
    job.wait(progress=False)
    pages = [c.request.url.params for c in api.calls if c.request.url.path.endswith("/events")]
    # First poll: the whole history (2 pages); later polls: one page, stopping at the cursor.
    assert len(pages) == 4


def test_wait_raises_job_failed_error_with_the_service_words(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.add(job_json(status="validating_files"))
    job = Job.get("ftjob-1", client=client, retry=policy)
    _script(fake, [("validating_files", []), ("failed", [])])
    with pytest.raises(JobFailedError) as info:
        job.wait(progress=False)
    assert info.value.code == "invalid_training_file"
    assert info.value.message == "line 3 has no assistant message"
    assert info.value.param == "training_file"
    assert info.value.job_id == "ftjob-1"


def test_wait_raises_on_cancel(fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy) -> None:
    fake.add(job_json(status="running"))
    job = Job.get("ftjob-1", client=client, retry=policy)
    _script(fake, [("cancelled", [])])
    with pytest.raises(JobCancelledError):
        job.wait(progress=False)


def test_wait_times_out_and_the_job_keeps_running(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.add(job_json(status="running"))
    job = Job.get("ftjob-1", client=client, retry=policy)
    with pytest.raises(JobTimeoutError) as info:
        job.wait(timeout=12, poll_interval=5, progress=False)
    assert isinstance(info.value, TimeoutError)
    assert "Job.get('ftjob-1').wait()" in str(info.value)
    assert sleeps.waits == [5, 7]
    assert fake.calls.get("cancel", 0) == 0


def test_ctrl_c_stops_watching_and_says_how_to_resume(
    fake: FakeJobs, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt(f"Ctrl-C during a {seconds}s wait")

    fake.add(job_json(status="running"))
    job = Job.get("ftjob-1", client=client, retry=RetryPolicy(sleep=interrupt))
    with caplog.at_level(logging.WARNING, logger="finetune_kit"), pytest.raises(KeyboardInterrupt):
        job.wait()
    assert "Job.get('ftjob-1').wait()" in caplog.text
    assert "keeps running" in caplog.text
    assert fake.calls.get("cancel", 0) == 0


def test_wait_rides_out_a_flaky_poll(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.add(job_json(status="running"))
    job = Job.get("ftjob-1", client=client, retry=policy)
    _script(fake, [("running", []), ("succeeded", [])])
    fake.faults["retrieve"] = [Fault(error=httpx.ConnectError("blip"))]
    job.wait(progress=False)
    assert sleeps.waits == [0.5, 5]


def test_wait_rejects_a_bad_poll_interval(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.add(job_json(status="running"))
    with pytest.raises(ValueError, match="poll_interval"):
        Job.get("ftjob-1", client=client, retry=policy).wait(poll_interval=0)


def test_wait_times_out_by_the_clock_not_by_the_sum_of_its_sleeps(
    fake: FakeJobs, client: openai.OpenAI
) -> None:
    # Each poll takes 100 s of clock time (a slow service); the sleeps add only seconds.
    now = [0.0]
    waits: list[float] = []
    fake.add(job_json(status="running"))

    def slow_poll(job: dict[str, Any], calls: int) -> None:
        del job, calls
        now[0] += 100.0

    policy = RetryPolicy(jitter=0.0, sleep=waits.append, clock=lambda: now[0])
    job = Job.get("ftjob-1", client=client, retry=policy)
    fake.on_retrieve = slow_poll
    with pytest.raises(JobTimeoutError):
        job.wait(timeout=250, poll_interval=1, progress=False)
    assert waits == [1, 1.5]  # three polls: at 100, 200 and 300 s on the clock
    assert fake.calls["retrieve"] == 4  # get + three polls


def test_wait_does_not_time_out_while_the_clock_stands_still(
    fake: FakeJobs, client: openai.OpenAI
) -> None:
    waits: list[float] = []
    fake.add(job_json(status="running"))
    policy = RetryPolicy(jitter=0.0, sleep=waits.append, clock=lambda: 0.0)
    job = Job.get("ftjob-1", client=client, retry=policy)
    nothing: list[dict[str, Any]] = []
    _script(fake, [("running", nothing)] * 5 + [("succeeded", nothing)])
    tuned = job.wait(timeout=10, poll_interval=5, progress=False)
    assert tuned.name == "ft:gpt-4o-mini:org:tickets:abc"
    assert sum(waits) > 10  # slept past the timeout, but no time passed on the clock
