"""With data_dir, a restart loses nothing: files, jobs, events, models; running jobs go on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from finetune_kit.local import LocalServer
from finetune_kit.local._persist import Deferred, Persistence

from .helpers import SYSTEM, small_training_file, upload

if TYPE_CHECKING:
    from pathlib import Path

    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

    from finetune_kit.local import ManualClock

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "hi"},
]


def _ask(client: openai.OpenAI, model: str) -> ChatCompletion:
    return client.chat.completions.create(
        model=model, messages=QUESTION, logprobs=True, top_logprobs=5, temperature=0
    )


def test_restart_loses_nothing(tmp_path: Path, clock: ManualClock) -> None:
    data = small_training_file(20)
    with LocalServer(data_dir=tmp_path, clock=clock, in_process=True) as first:
        client = first.client(max_retries=0)
        file_id = upload(client, data)
        done = client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, metadata={"run": "done"}
        )
        clock.advance(10)
        done = client.fine_tuning.jobs.retrieve(done.id)
        assert done.status == "succeeded"
        running = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
        clock.advance(1.5)  # 0.5 s into running
        running = client.fine_tuning.jobs.retrieve(running.id)
        assert running.status == "running"
        events_before = [e.id for e in client.fine_tuning.jobs.list_events(running.id, limit=500)]
        answer = _ask(client, str(done.fine_tuned_model))

    with LocalServer(data_dir=tmp_path, clock=clock, in_process=True) as second:
        client = second.client(max_retries=0)
        assert client.files.content(file_id).content == data
        assert client.fine_tuning.jobs.retrieve(done.id) == done
        assert [j.id for j in client.fine_tuning.jobs.list(metadata={"run": "done"})] == [done.id]
        again = _ask(client, str(done.fine_tuned_model))
        assert again.choices[0].message.content == answer.choices[0].message.content
        assert again.choices[0].logprobs == answer.choices[0].logprobs
        assert client.models.retrieve(str(done.fine_tuned_model)).id == done.fine_tuned_model
        (result,) = done.result_files
        assert client.files.content(result).text.startswith("step,train_loss")

        events_now = [e.id for e in client.fine_tuning.jobs.list_events(running.id, limit=500)]
        assert events_now == events_before  # same clock: nothing new yet
        clock.advance(10)
        finished = client.fine_tuning.jobs.retrieve(running.id)
        assert finished.status == "succeeded"
        steps = [
            e.data["step"]
            for e in client.fine_tuning.jobs.list_events(running.id, limit=500)
            if e.type == "metrics" and isinstance(e.data, dict)
        ]
        assert steps == sorted(set(steps), reverse=True)
        assert steps[0] == steps[-1] + len(steps) - 1
        assert len(client.fine_tuning.jobs.checkpoints.list(running.id).data) == 3


def test_deletes_persist(tmp_path: Path, clock: ManualClock) -> None:
    with LocalServer(data_dir=tmp_path, clock=clock, in_process=True) as first:
        client = first.client(max_retries=0)
        keep = upload(client, b"{}\n", purpose="user_data")
        gone = upload(client, b"{}\n", purpose="user_data")
        client.files.delete(gone)
    with LocalServer(data_dir=tmp_path, clock=clock, in_process=True) as second:
        assert [f.id for f in second.client(max_retries=0).files.list()] == [keep]


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_deferred_document_is_built_once_and_only_when_needed(
    tmp_path: Path, on_disk: bool
) -> None:
    # Trained weights are staged as Deferred: in memory their JSON is built only if read back.
    built: list[int] = []

    def build() -> dict[str, int]:
        built.append(1)
        return {"n": len(built)}

    db = Persistence(tmp_path if on_disk else None)
    db.save("weights", "m", Deferred(build))
    assert built == ([1] if on_disk else [])
    assert db.load("weights") == [("m", {"n": 1})]
    assert db.load("weights") == [("m", {"n": 1})]
    assert built == [1]
    db.close()
    if on_disk:
        assert Persistence(tmp_path).load("weights") == [("m", {"n": 1})]
