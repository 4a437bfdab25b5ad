"""Train/serve parity: a model tuned on a ClassificationTask's data is asked the same prompt.

The whole loop runs on the local backend (on the shared fake clock): the task writes the
training data, a job trains on it, and the task's classify/evaluate requests are recorded as
the server receives them. Every prompt sent must be, byte for byte, a prompt of the uploaded
training or validation file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import openai

from finetune_kit import ClassificationTask, Dataset, Job, RetryPolicy
from finetune_kit.cli._demo_flow import load_demo_data
from finetune_kit.local import LocalServer

if TYPE_CHECKING:
    import httpx

    from tests.conftest import RecordingClock

MODEL = "gpt-4o-mini"


def _prompt_bytes(messages: list[dict[str, Any]]) -> bytes:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()


def test_requests_carry_exactly_the_training_prompt(clock: RecordingClock) -> None:
    texts, labels = load_demo_data()
    keep = [i for i, label in enumerate(labels) if label in {"coding", "trivia", "emotion"}]
    task = ClassificationTask(
        ["coding", "emotion", "trivia"], instructions="Classify the topic of the user's message."
    )
    train, held_out = task.dataset([texts[i] for i in keep], [labels[i] for i in keep]).split(
        test_size=0.25, seed=0
    )

    sent: list[bytes] = []

    def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            sent.append(request.read())

    # Over a real socket, so the HTTP client's own hook sees every request as sent.
    with (
        LocalServer(clock=clock) as server,
        openai.DefaultHttpxClient(event_hooks={"request": [record]}) as http,
    ):
        client = server.client().with_options(http_client=http)
        _train_and_ask(task, train, held_out, client, clock.policy(), sent, texts[keep[0]])


def _train_and_ask(
    task: ClassificationTask,
    train: Dataset,
    held_out: Dataset,
    client: openai.OpenAI,
    policy: RetryPolicy,
    sent: list[bytes],
    text: str,
) -> None:
    job = Job.create(train, model=MODEL, validation=held_out, seed=1, client=client, retry=policy)
    tuned = job.wait(progress=False, poll_interval=1.0)
    remote = client.fine_tuning.jobs.retrieve(job.id)
    uploaded = [client.files.content(remote.training_file).read()]
    if remote.validation_file:
        uploaded.append(client.files.content(remote.validation_file).read())
    trained = {
        _prompt_bytes(json.loads(line)["messages"][:-1])
        for content in uploaded
        for line in content.splitlines()
        if line.strip()
    }

    evaluation = task.evaluate(
        held_out, model=tuned.name, client=client, retry=policy, progress=False
    )
    answer = task.classify(text, model=tuned.name, client=client, retry=policy)

    assert len(sent) == len(held_out) + 1
    for content in sent:
        messages = json.loads(content)["messages"]
        assert _prompt_bytes(messages) in trained
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[0]["content"] == task.system_prompt
    assert evaluation.technique == "logit_bias"
    assert evaluation.accuracy > 0.6
    assert answer.technique == "logit_bias"
    assert answer.label in task.labels.names
