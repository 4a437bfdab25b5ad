"""A job's slow part, run without the store's lock: check its files, then train.

:func:`prepare` is pure apart from the trainer's CPU time: it takes the job's inputs (file
bytes already read) and returns either what training produced or why the job fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..facts._models import default_n_epochs
from ._inputs import BadData, method_hyperparameters, training_examples
from ._trainer import Hyperparameters, LinearTrainer, limit_examples
from ._validate import FileProblem, check_training_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._trainer_types import AnswerModel, StepMetrics, Trainer, TrainingExample, TrainingRun

__all__ = ["Failure", "Inputs", "Trained", "prepare"]


@dataclass(frozen=True)
class Inputs:
    """What a job trains on."""

    base: str
    method: dict[str, Any]
    seed: int
    training_file: str
    training: bytes | None
    validation_file: str | None
    validation: bytes | None


@dataclass(frozen=True)
class Trained:
    """A finished training run and what the job reports about it."""

    run: TrainingRun[AnswerModel]
    tokens: int
    epochs: int
    hyperparameters: dict[str, Any]
    note: str | None


@dataclass(frozen=True)
class Failure:
    """Why a job fails before training (the job's ``error``)."""

    code: str
    message: str
    param: str | None


class _Stopped(Exception):
    """Raised through the trainer's ``on_step`` once the job it trains for is cancelled."""


def _examples(
    param: str, fid: str, data: bytes | None, inputs: Inputs
) -> tuple[list[TrainingExample], int, int] | Failure:
    if data is None:
        return Failure(f"invalid_{param}", f"File {fid} no longer exists.", param)
    kind = "training" if param == "training_file" else "validation"
    try:
        # The service accepts validation files of any size; the minimum is for training.
        lines = check_training_file(data, inputs.method["type"], training=param == "training_file")
        examples, tokens = training_examples(data, inputs.method, inputs.base)
    except (FileProblem, BadData) as exc:
        where = f"Line {exc.line}: " if isinstance(exc, BadData) and exc.line else ""
        return Failure(
            f"invalid_{param}",
            f"The job failed due to an invalid {kind} file. {where}{exc}",
            param,
        )
    return examples, tokens, lines


def prepare(
    inputs: Inputs, trainer: Trainer[AnswerModel], stop: Callable[[], bool]
) -> Trained | Failure:
    """Check the job's files and train on them with ``trainer``; a ``cancelled`` failure as
    soon as a step ends after ``stop()`` turned True (the trainer's ``on_step`` raises then;
    the job has moved on, so that outcome is never recorded)."""
    found = _examples("training_file", inputs.training_file, inputs.training, inputs)
    if isinstance(found, Failure):
        return found
    train_set, tokens, n_lines = found
    validation: list[TrainingExample] = []
    if inputs.validation_file is not None:
        checked = _examples("validation_file", inputs.validation_file, inputs.validation, inputs)
        if isinstance(checked, Failure):
            return checked
        validation = checked[0]
    hyper = dict(method_hyperparameters(inputs.method))
    n_epochs = hyper.get("n_epochs", "auto")
    epochs = default_n_epochs(n_lines) if n_epochs == "auto" else int(n_epochs)
    size = hyper.get("batch_size", "auto")
    batch = max(1, min(256, math.ceil(len(train_set) * 0.002))) if size == "auto" else int(size)
    lr_mult = hyper.get("learning_rate_multiplier", "auto")
    lr = 1.0 if lr_mult == "auto" else float(lr_mult)
    learned, note = train_set, None
    if isinstance(trainer, LinearTrainer):
        # The caps keep the pure-Python built-in trainer fast; a trainer of your own (a real
        # model on a GPU, say) gets every example, as the service would train on.
        learned, note = limit_examples(train_set, seed=inputs.seed)

    def on_step(metrics: StepMetrics) -> None:
        del metrics  # the job reveals the steps on its own clock, from the finished run
        if stop():
            raise _Stopped

    try:
        run = trainer.train(
            learned,
            validation=validation,
            hyperparameters=Hyperparameters(epochs, batch, lr),
            seed=inputs.seed,
            on_step=on_step,
        )
    except _Stopped:
        return Failure("cancelled", "The job was cancelled while it trained.", None)
    hyper.update({"batch_size": batch, "learning_rate_multiplier": lr, "n_epochs": epochs})
    return Trained(run=run, tokens=tokens * epochs, epochs=epochs, hyperparameters=hyper, note=note)
