"""examples/custom_trainer.py: a user's trainer runs through the Trainer protocol and the server."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit.local import (
    AnswerModel,
    Hyperparameters,
    LinearTrainer,
    LocalServer,
    ManualClock,
    StepMetrics,
    Trainer,
    TrainingExample,
    TrainingRun,
)
from finetune_kit.local._trainer import MAX_ANSWERS

from .helpers import SYSTEM, chat_line, jsonl, small_training_file, upload

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import ModuleType

    import openai
    from openai.types.chat import ChatCompletionMessageParam
    from typing_extensions import Unpack

    from finetune_kit.local import TrainOptions

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_trainer.py"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("custom_trainer_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module by name while the class body runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_the_example_runs(example: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    example.main()
    out = capsys.readouterr().out
    assert "step 4: train_loss" in out
    assert "'coding': 0.9" in out


def test_the_example_trainer_conforms_to_the_protocol(example: ModuleType) -> None:
    trainer = example.WordVoteTrainer()
    assert isinstance(trainer, Trainer)
    data = [
        TrainingExample("q\nwrite code", "coding"),
        TrainingExample("q\nwho won", "trivia"),
        TrainingExample("q\nfix code", "coding"),
    ]
    seen: list[StepMetrics] = []
    run = trainer.train(
        data,
        validation=data[:1],
        hyperparameters=Hyperparameters(n_epochs=2, batch_size=2),
        seed=3,
        on_step=seen.append,
    )
    assert seen == run.steps
    assert run.epoch_ends == [2, 4]
    assert sorted(run.snapshots) == [2, 4]
    assert all(s.valid_loss is not None for s in run.steps)
    model = trainer.load_model(json.loads(json.dumps(run.model.to_json())))
    assert isinstance(model, AnswerModel)
    assert model.probabilities("q\nwrite more code") == run.model.probabilities(
        "q\nwrite more code"
    )
    assert model.answers[0] == "coding"
    assert model.probabilities("q\nwrite more code")[0] > 0.5


@dataclass
class _Watched:
    """A model that records the texts it was asked about (to see who answers)."""

    inner: AnswerModel
    asked: list[str] = field(default_factory=list)

    @property
    def answers(self) -> list[str]:
        return self.inner.answers

    def probabilities(self, text: str) -> list[float]:
        self.asked.append(text)
        return self.inner.probabilities(text)

    def to_json(self) -> dict[str, Any]:
        return self.inner.to_json()


@dataclass
class _Recording:
    """Wraps a trainer: keeps every run it trained and every model it loaded."""

    inner: Trainer[AnswerModel]
    calls: list[tuple[list[TrainingExample], Hyperparameters, int, TrainingRun[_Watched]]] = field(
        default_factory=list
    )
    loaded: list[_Watched] = field(default_factory=list)

    def train(
        self, examples: Sequence[TrainingExample], **options: Unpack[TrainOptions]
    ) -> TrainingRun[_Watched]:
        run = self.inner.train(examples, **options)
        snapshots = {step: _Watched(m) for step, m in run.snapshots.items()}
        watched = TrainingRun(_Watched(run.model), run.steps, run.epoch_ends, snapshots)
        self.calls.append((list(examples), options["hyperparameters"], options["seed"], watched))
        return watched

    def load_model(self, data: dict[str, Any]) -> _Watched:
        model = _Watched(self.inner.load_model(data))
        self.loaded.append(model)
        return model


QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "can you help me write a python function"},
]


def _metrics(client: openai.OpenAI, job_id: str) -> list[dict[str, Any]]:
    events = client.fine_tuning.jobs.list_events(job_id, limit=500).data
    return [e.data for e in reversed(events) if e.type == "metrics" and isinstance(e.data, dict)]


def _steps(run: TrainingRun[Any]) -> list[dict[str, Any]]:
    total = len(run.steps)
    return [{"total_steps": total, **s.to_json()} for s in run.steps]


def _ask(client: openai.OpenAI, model: str) -> str:
    reply = client.chat.completions.create(model=model, messages=QUESTION, temperature=0)
    return reply.choices[0].message.content or ""


def _best(model: AnswerModel, text: str) -> str:
    probs = model.probabilities(text)
    return model.answers[probs.index(max(probs))]


def test_a_job_trains_and_answers_with_the_servers_trainer(example: ModuleType) -> None:
    trainer = _Recording(example.WordVoteTrainer())
    clock = ManualClock()
    with LocalServer(clock=clock, in_process=True, trainer=trainer) as server:
        assert server.trainer is trainer
        client = server.client(max_retries=0)
        job = client.fine_tuning.jobs.create(
            model="gpt-4o-mini",
            training_file=upload(client, small_training_file(30)),
            hyperparameters={"n_epochs": 2},
            seed=7,
        )
        clock.advance(3600)
        job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded", job.error
        assert job.fine_tuned_model is not None
        [(examples, hyper, seed, run)] = trainer.calls
        assert (len(examples), hyper.n_epochs, hyper.batch_size, seed) == (30, 2, 1, 7)
        assert _metrics(client, job.id) == _steps(run)
        answer = _ask(client, job.fine_tuned_model)
        # The toy's model answered (it was asked about this very conversation), and the
        # reply is its most probable answer.
        assert run.model.asked
        assert answer == _best(run.model.inner, run.model.asked[-1])
        [checkpoint, *_] = client.fine_tuning.jobs.checkpoints.list(job.id).data
        _ask(client, checkpoint.fine_tuned_model_checkpoint)
        assert run.snapshots[checkpoint.step_number].asked


def test_a_restarted_server_loads_the_trainers_saved_models(
    example: ModuleType, tmp_path: Path
) -> None:
    clock = ManualClock()
    first_trainer = _Recording(example.WordVoteTrainer())
    with LocalServer(data_dir=tmp_path, clock=clock, in_process=True, trainer=first_trainer) as a:
        client = a.client(max_retries=0)
        file_id = upload(client, small_training_file(20))
        done = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
        clock.advance(3600)
        done = client.fine_tuning.jobs.retrieve(done.id)
        assert done.fine_tuned_model is not None
        answer = _ask(client, done.fine_tuned_model)
        running = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
        clock.advance(1.5)  # trained, and 0.5 s into running
        assert client.fine_tuning.jobs.retrieve(running.id).status == "running"
    trainer = _Recording(example.WordVoteTrainer())
    with LocalServer(data_dir=tmp_path, clock=clock, in_process=True, trainer=trainer) as b:
        client = b.client(max_retries=0)
        assert _ask(client, done.fine_tuned_model) == answer
        assert trainer.loaded[-1].asked  # the reloaded model answered
        # The running job's run (model and snapshots) comes back through load_model too.
        clock.advance(3600)
        running = client.fine_tuning.jobs.retrieve(running.id)
        assert running.status == "succeeded", running.error
        assert not trainer.calls  # nothing was trained again
        assert len(trainer.loaded) > 1


def test_the_default_server_trains_the_built_in_model(example: ModuleType) -> None:
    toy = _Recording(example.WordVoteTrainer())
    data = small_training_file(30)
    runs: list[list[dict[str, Any]]] = []
    for trainer in (toy, None):
        clock = ManualClock()
        with LocalServer(clock=clock, in_process=True, trainer=trainer) as server:
            client = server.client(max_retries=0)
            job = client.fine_tuning.jobs.create(
                model="gpt-4o-mini", training_file=upload(client, data), seed=7
            )
            clock.advance(3600)
            runs.append(_metrics(client, job.id))
    assert isinstance(server.trainer, LinearTrainer)
    [(examples, hyper, seed, _)] = toy.calls
    built_in = LinearTrainer().train(examples, validation=(), hyperparameters=hyper, seed=seed)
    assert runs[1] == _steps(built_in)
    assert runs[0] != runs[1]


def test_only_the_built_in_trainer_is_capped(example: ModuleType) -> None:
    # More distinct answers than the built-in trainer learns: a trainer of your own gets them
    # all, with no "small scale" warning.
    lines = [chat_line(f"message number {i}", f"label{i}") for i in range(MAX_ANSWERS + 5)]
    warnings: list[list[str]] = []
    for trainer in (_Recording(example.WordVoteTrainer()), LinearTrainer()):
        clock = ManualClock()
        with LocalServer(clock=clock, in_process=True, trainer=trainer) as server:
            client = server.client(max_retries=0)
            job = client.fine_tuning.jobs.create(
                model="gpt-4o-mini",
                training_file=upload(client, jsonl(lines)),
                hyperparameters={"n_epochs": 1},
            )
            clock.advance(3600)
            events = client.fine_tuning.jobs.list_events(job.id, limit=500).data
            warnings.append([e.message for e in events if e.level == "warn"])
            if isinstance(trainer, _Recording):
                [(examples, *_)] = trainer.calls
                assert len({ex.answer for ex in examples}) == MAX_ANSWERS + 5
    assert warnings[0] == []
    assert any("small scale" in w for w in warnings[1])
