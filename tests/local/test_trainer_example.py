"""examples/custom_trainer.py: a user's trainer runs through the Trainer protocol."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from finetune_kit.local._trainer import (
    AnswerModel,
    Hyperparameters,
    StepMetrics,
    Trainer,
    TrainingExample,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

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
