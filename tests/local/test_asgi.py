"""The backend as an ASGI app: unmodified openai clients in process, work off the lock."""

from __future__ import annotations

import ast
import threading
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


def _train_in_another_request(
    server: LocalServer, clock: ManualClock, entered: threading.Event
) -> tuple[str, threading.Thread, list[str]]:
    """Create a job and start the request that trains it; return once training has begun.

    Returns the job id, the thread of that request and the list it appends its answer to.
    """
    client = server.client(max_retries=0)
    job_id = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=upload(client, small_training_file(12))
    ).id
    clock.advance(0.6)  # validation is due: the next request trains
    answers: list[str] = []
    trainer = threading.Thread(
        target=lambda: answers.append(client.fine_tuning.jobs.retrieve(job_id).status)
    )
    trainer.start()
    assert entered.wait(_PATIENCE)
    return job_id, trainer, answers


def test_the_server_answers_while_a_job_trains(
    clocked_server: LocalServer,
    clock: ManualClock,
    gate: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = gate
    job_id, trainer, answers = _train_in_another_request(clocked_server, clock, entered)
    # Training is under way in the other request; this one is answered meanwhile.
    other = clocked_server.client(max_retries=0)
    assert other.fine_tuning.jobs.retrieve(job_id).status == "validating_files"
    assert other.fine_tuning.jobs.list_events(job_id).data
    assert other.models.list().data
    release.set()
    trainer.join(_PATIENCE)
    assert answers == ["queued"]


def test_a_job_cancelled_while_training_stays_cancelled(
    clocked_server: LocalServer,
    clock: ManualClock,
    gate: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = gate
    job_id, trainer, answers = _train_in_another_request(clocked_server, clock, entered)
    other = clocked_server.client(max_retries=0)
    assert other.fine_tuning.jobs.cancel(job_id).status == "cancelled"
    release.set()
    trainer.join(_PATIENCE)
    assert answers == ["cancelled"]
    clock.advance(60)
    assert other.fine_tuning.jobs.retrieve(job_id).status == "cancelled"
    assert other.fine_tuning.jobs.retrieve(job_id).fine_tuned_model is None


def test_the_server_answers_while_a_batch_runs(
    clocked_server: LocalServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune_kit.local._batches import run_lines

    entered, release = _hold(monkeypatch, "finetune_kit.local._batches.run_lines", run_lines)
    client = clocked_server.client(max_retries=0)
    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    }
    batch = client.batches.create(
        input_file_id=upload(client, jsonl([line]), purpose="batch"),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    clock.advance(0.3)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    clock.advance(0.7)
    runner = threading.Thread(target=lambda: client.batches.retrieve(batch.id))
    runner.start()
    try:
        assert entered.wait(_PATIENCE)
        other = clocked_server.client(max_retries=0)
        assert other.batches.retrieve(batch.id).status == "in_progress"
    finally:
        release.set()
        runner.join(_PATIENCE)
    assert client.batches.retrieve(batch.id).status == "finalizing"


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
