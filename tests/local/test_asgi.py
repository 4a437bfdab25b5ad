"""The backend as an ASGI app: unmodified openai clients in process, work off the lock."""

from __future__ import annotations

import ast
import contextlib
import gc
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest

import finetune_kit.local
from finetune_kit.local import LocalServer, in_process_async_http_client, in_process_http_client

from .helpers import jsonl, small_training_file, upload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from finetune_kit.local import ManualClock

#: Generous bound on waits for another thread; a healthy test never comes near it.
_PATIENCE = 30.0


def test_user_built_sync_client_in_process(clock: ManualClock) -> None:
    server = LocalServer(clock=clock)  # never started: nothing listens
    try:
        with in_process_http_client(server.app) as http_client:
            client = openai.OpenAI(
                api_key="sk-any", base_url="http://anywhere.invalid/v1", http_client=http_client
            )
            file_id = upload(client, small_training_file(12))
            assert [f.id for f in client.files.list()] == [file_id]
            assert client.files.content(file_id).content == small_training_file(12)
        assert not server.running
        assert server.port == 0
    finally:
        server.stop()


def test_an_unclosed_sync_client_stops_its_loop_when_collected(clock: ManualClock) -> None:
    # A client dropped without close() must not leave its event-loop thread running forever.
    server = LocalServer(clock=clock)
    try:
        before = set(threading.enumerate())
        client = openai.OpenAI(
            api_key="sk-any", base_url=server.url, http_client=in_process_http_client(server.app)
        )
        (thread,) = set(threading.enumerate()) - before
        assert client.models.list().data
        del client
        gc.collect()
        thread.join(_PATIENCE)
        assert not thread.is_alive()
    finally:
        server.stop()


async def test_user_built_async_client_in_process(clock: ManualClock) -> None:
    with LocalServer(clock=clock, in_process=True) as server:
        async with openai.AsyncOpenAI(
            api_key="sk-any",
            base_url=server.url,
            http_client=in_process_async_http_client(server.app),
        ) as client:
            created = await client.files.create(
                file=("t.jsonl", small_training_file(12)), purpose="fine-tune"
            )
            job = await client.fine_tuning.jobs.create(
                model="gpt-4o-mini", training_file=created.id
            )
            clock.advance(60)
            job = await client.fine_tuning.jobs.retrieve(job.id)
            assert job.status == "succeeded"
            reply = await client.chat.completions.create(
                model=str(job.fine_tuned_model), messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content


def test_in_process_server_has_no_port_and_cannot_serve(clock: ManualClock) -> None:
    with LocalServer(clock=clock, in_process=True) as server:
        assert server.url == "http://local.invalid/v1"
        with pytest.raises(RuntimeError, match="in-process"):
            server.serve_forever()


def _hold(
    monkeypatch: pytest.MonkeyPatch, target: str, real: Callable[..., Any]
) -> tuple[threading.Event, threading.Event]:
    """Make ``target`` wait: ``(entered, release)`` events around the ``real`` function."""
    entered, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(_PATIENCE)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, held)
    return entered, release


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Makes training wait: ``(entered, release)`` events around the real trainer."""
    from finetune_kit.local import LinearTrainer

    entered, release = _hold(
        monkeypatch, "finetune_kit.local.LinearTrainer.train", LinearTrainer.train
    )
    yield entered, release
    release.set()


@dataclass
class _Training:
    """A job whose training is under way in another request (held by :func:`gate`)."""

    job_id: str
    other: openai.OpenAI  # a client for requests made meanwhile
    thread: threading.Thread
    answers: list[str]
    release: threading.Event

    def finish(self) -> list[str]:
        """Let training end; the status the training request answered."""
        self.release.set()
        self.thread.join(_PATIENCE)
        return self.answers


@pytest.fixture
def training(
    clocked_server: LocalServer,
    clock: ManualClock,
    gate: tuple[threading.Event, threading.Event],
) -> _Training:
    """Create a job and start the request that trains it; return once training has begun."""
    entered, release = gate
    client = clocked_server.client(max_retries=0)
    job_id = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=upload(client, small_training_file(12))
    ).id
    clock.advance(0.6)  # validation is due: the next request trains
    answers: list[str] = []
    thread = threading.Thread(
        target=lambda: answers.append(client.fine_tuning.jobs.retrieve(job_id).status)
    )
    thread.start()
    assert entered.wait(_PATIENCE)
    other = clocked_server.client(max_retries=0)
    return _Training(job_id, other, thread, answers, release)


def test_the_server_answers_while_a_job_trains(training: _Training) -> None:
    # Training is under way in the other request; this one is answered meanwhile.
    other = training.other
    assert other.fine_tuning.jobs.retrieve(training.job_id).status == "validating_files"
    assert other.fine_tuning.jobs.list_events(training.job_id).data
    assert other.models.list().data
    assert training.finish() == ["queued"]


def test_a_job_cancelled_while_training_stays_cancelled(
    training: _Training, clock: ManualClock
) -> None:
    jobs = training.other.fine_tuning.jobs
    assert jobs.cancel(training.job_id).status == "cancelled"
    assert training.finish() == ["cancelled"]
    clock.advance(60)
    assert jobs.retrieve(training.job_id).status == "cancelled"
    assert jobs.retrieve(training.job_id).fine_tuned_model is None


def test_a_job_cancelled_while_training_stops_its_trainer_at_the_next_step(
    training: _Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune_kit.local import StepMetrics

    steps: list[int] = []

    def counted(**fields: Any) -> Any:
        steps.append(fields["step"])
        return StepMetrics(**fields)

    monkeypatch.setattr("finetune_kit.local._trainer_linear.StepMetrics", counted)
    assert training.other.fine_tuning.jobs.cancel(training.job_id).status == "cancelled"
    assert training.finish() == ["cancelled"]
    # The first step's on_step saw the cancel and ended the run (it has dozens of steps).
    assert steps == [1]


@contextlib.contextmanager
def _batch_running(
    server: LocalServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, lines: int = 1
) -> Iterator[tuple[openai.OpenAI, str]]:
    """A batch of ``lines`` requests being answered in another request, held there until the
    block ends: yields a client for requests made meanwhile and the batch's id."""
    from finetune_kit.local._batches import run_lines

    entered, release = _hold(monkeypatch, "finetune_kit.local._batches.run_lines", run_lines)
    client = server.client(max_retries=0)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    requests = [
        {"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(lines)
    ]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(requests), purpose="batch"),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    clock.advance(0.3)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    clock.advance(0.7)  # the requests are due: the next request answers them
    runner = threading.Thread(target=lambda: client.batches.retrieve(batch.id))
    runner.start()
    try:
        assert entered.wait(_PATIENCE)
        yield server.client(max_retries=0), batch.id
    finally:
        release.set()
        runner.join(_PATIENCE)


def test_the_server_answers_while_a_batch_runs(
    clocked_server: LocalServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _batch_running(clocked_server, clock, monkeypatch) as (other, batch_id):
        assert other.batches.retrieve(batch_id).status == "in_progress"
    assert other.batches.retrieve(batch_id).status == "finalizing"


def test_a_batch_cancelled_while_it_runs_stops_answering(
    clocked_server: LocalServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune_kit.local._completions import create_chat_completion

    answered: list[object] = []

    def counted(*args: Any) -> Any:
        answered.append(args)
        return create_chat_completion(*args)

    monkeypatch.setattr("finetune_kit.local._batches.create_chat_completion", counted)
    with _batch_running(clocked_server, clock, monkeypatch, lines=5) as (other, batch_id):
        assert other.batches.cancel(batch_id).status == "cancelled"
    assert answered == []  # not one request was answered for nothing
    assert other.batches.retrieve(batch_id).status == "cancelled"


def _our_imports(path: Path) -> list[str]:
    """Modules of ours that ``path`` imports, as absolute names."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("finetune_kit"):
                found.append(node.module or "")
            elif node.level == 2:  # from ..x import y
                found.append("finetune_kit." + (node.module or ""))
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("finetune_kit")]
    return found


def test_the_backend_imports_nothing_of_ours_but_facts() -> None:
    folder = Path(finetune_kit.local.__file__).parent
    outside = {
        f"{path.name}: {name}"
        for path in folder.glob("*.py")
        for name in _our_imports(path)
        if not name.startswith("finetune_kit.facts")
    }
    assert outside == set()
