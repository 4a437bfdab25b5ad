"""What a trainer takes and gives back, and the :class:`Trainer` protocol itself.

The local backend turns each fine-tuning job into a list of :class:`TrainingExample` (the text
a model reads, the answer that follows), hands it to a trainer with the job's resolved
:class:`Hyperparameters` and seed, and gets back a :class:`TrainingRun`: the per-step
metrics the job's events and result file report, the step at which each epoch ended, one
model snapshot per epoch (the job's checkpoints) and the final model. A model is anything
with the :class:`AnswerModel` shape: the answers it can give, a distribution over them for a
conversation's text, and a JSON form the trainer's :meth:`Trainer.load_model` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, runtime_checkable

from typing_extensions import TypeVar

from ._trainer_model import LinearModel

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from typing_extensions import NotRequired, Unpack

__all__ = [
    "AnswerModel",
    "Hyperparameters",
    "StepMetrics",
    "TrainOptions",
    "Trainer",
    "TrainingExample",
    "TrainingRun",
]


@dataclass(frozen=True)
class TrainingExample:
    """One thing to learn: the conversation so far and the answer that follows it."""

    context: str
    answer: str


@dataclass(frozen=True)
class Hyperparameters:
    """A job's resolved hyperparameters (``"auto"`` already replaced by numbers).

    Attributes:
        n_epochs: Passes over the training examples.
        batch_size: Examples per step.
        learning_rate_multiplier: Scales the trainer's own base learning rate.
    """

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if self.n_epochs < 1 or self.batch_size < 1 or not self.learning_rate_multiplier > 0:
            raise ValueError(
                "n_epochs and batch_size must be at least 1 and learning_rate_multiplier "
                f"positive, not {self.n_epochs}, {self.batch_size}, "
                f"{self.learning_rate_multiplier}"
            )


@dataclass(frozen=True)
class StepMetrics:
    """What one training step measured (the numbers the job's metrics events carry).

    ``train_loss`` and ``train_mean_token_accuracy`` are the step's minibatch's, before the
    update. With a validation set, ``valid_*`` are measured on a minibatch of it after the
    update, and at the end of each epoch ``full_valid_*`` on all of it.
    """

    step: int
    train_loss: float
    train_mean_token_accuracy: float
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The metrics as a dict, without the ``None`` fields."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@runtime_checkable
class AnswerModel(Protocol):
    """What the local backend needs of a trained model.

    ``answers`` are the texts the model can reply with; :meth:`probabilities` gives one
    probability per answer, in the same order, for a conversation's text (every message's
    content joined by newlines). The backend turns that distribution into tokens, so
    ``logit_bias``, ``logprobs``, ``temperature`` and structured outputs work on any model.
    """

    @property
    def answers(self) -> list[str]:
        """The possible replies, in the order :meth:`probabilities` uses."""
        ...

    def probabilities(self, text: str) -> list[float]:
        """A distribution over :attr:`answers` for the conversation ``text``."""
        ...

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form that the trainer's ``load_model`` turns back into it."""
        ...


ModelT_co = TypeVar("ModelT_co", bound=AnswerModel, covariant=True, default=LinearModel)


@dataclass
class TrainingRun(Generic[ModelT_co]):
    """A finished training run: per-step metrics, per-epoch snapshots and the final model."""

    model: ModelT_co
    steps: list[StepMetrics]
    """One entry per step, numbered from 1 without gaps."""
    epoch_ends: list[int]
    """The step number at which each epoch ended."""
    snapshots: Mapping[int, ModelT_co]
    """Model after each epoch, keyed by the step number (the job's checkpoints)."""


class TrainOptions(TypedDict):
    """What :meth:`Trainer.train` takes besides the examples, declared once.

    A trainer takes them as ``**options: Unpack[TrainOptions]`` (the backend passes them by
    keyword); spelling them out as keyword-only parameters conforms too.

    Attributes:
        validation: Held-out examples to measure on (may be empty).
        hyperparameters: The job's resolved hyperparameters.
        seed: The job's seed: the same seed gives the same run.
        on_step: Called with each step's metrics, in order, as soon as they are known.
    """

    validation: Sequence[TrainingExample]
    hyperparameters: Hyperparameters
    seed: int
    on_step: NotRequired[Callable[[StepMetrics], None] | None]


@runtime_checkable
class Trainer(Protocol[ModelT_co]):
    """Turns a job's examples into a model the local backend can serve.

    The built-in :class:`~._trainer_linear.LinearTrainer` implements it; a trainer of your own
    (a real LLM on a GPU, say) plugs in behind the same API. Rules an implementation keeps:

    - ``train`` is called off the server's lock, maybe in a worker thread, while other jobs
      train: it must keep no shared mutable state and take everything from its arguments;
    - the same examples, hyperparameters and seed give the same run (the backend promises
      identical models for identical jobs);
    - ``on_step`` (when given) is called once per step, in order, with that step's metrics;
      an exception it raises (e.g. because the job was cancelled) must propagate;
    - ``load_model(model.to_json())`` answers exactly like ``model``.
    """

    def train(
        self, examples: Sequence[TrainingExample], **options: Unpack[TrainOptions]
    ) -> TrainingRun[ModelT_co]:
        """Learn from ``examples`` (at least one) with ``options`` (see :class:`TrainOptions`);
        see the class docstring for the rules."""
        ...

    def load_model(self, data: dict[str, Any]) -> ModelT_co:
        """The model whose :meth:`AnswerModel.to_json` gave ``data``."""
        ...
