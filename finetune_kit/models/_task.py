"""ClassificationTask: one object builds a classifier's training data and its requests.

A tuned model must be asked exactly what it was trained on. The task holds the labels and
the instructions and writes the one prompt both sides use: :meth:`ClassificationTask.dataset`
puts it in every training example, and :meth:`~ClassificationTask.classify`,
:meth:`~ClassificationTask.classify_many` and :meth:`~ClassificationTask.evaluate` send the
same messages, byte for byte, with the label restriction carried by ``logit_bias`` (or a
structured-output ``enum``) rather than by extra prompt text. The label list is in the prompt
from the start, so a base model can answer too and training teaches nothing it won't see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from .._core.keywords import check_keywords
from ..classification._classify import (
    aclassify_with,
    arun_many,
    classify_with,
    run_many,
    warm_up,
)
from ..classification._labels import LabelSet
from ..classification._many import ManyKwargs, ManySettings
from ..classification._options import Call, ClassifyOptions, check_texts
from ..classification._prompts import system_prompt
from ..datasets._dataset import Dataset
from ..evaluate import Evaluation, evaluation_items

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence

    import openai
    from typing_extensions import Unpack

    from .._core.retry import RetryPolicy
    from ..classification._classify import Classification, ItemResult, LabelsInput
    from ..classification._options import ClientT
    from ..classification._prompts import TextInput
    from ..classification._results import TechniqueChoice

__all__ = ["ClassificationTask", "TaskKwargs", "TaskManyKwargs"]


class TaskKwargs(TypedDict, total=False):
    """The options every :class:`ClassificationTask` call takes besides the model, the client
    and ``retry`` (each described at :class:`~finetune_kit.ClassifyOptions`): the task's own
    prompt takes the place of ``instructions`` and ``examples``."""

    technique: TechniqueChoice
    abstain_below: float | None
    reasks: int
    base_model: str | None


class TaskManyKwargs(TaskKwargs, ManyKwargs, total=False):
    """The options of the task's many-texts calls (``classify_many``, ``evaluate`` and their
    async siblings): :class:`TaskKwargs` and ``concurrency``, ``progress``."""


class ClassificationTask:
    """A classification: its labels and instructions, for training and for asking alike.

    Args:
        labels: a sequence of strings, an Enum class, or a mapping label -> description.
        instructions: what the classification is about, first in the system prompt (default
            ``"Classify the text."``); the labels are listed after it.

    Example:
        >>> task = ClassificationTask(["billing", "bug"], instructions="Route the ticket.")
        >>> task.system_prompt
        'Route the ticket.\\nReply with only one of these labels: billing, bug'
    """

    def __init__(self, labels: LabelsInput, *, instructions: str | None = None) -> None:
        if instructions is not None and not isinstance(instructions, str):
            raise TypeError(f"instructions must be a string, not {type(instructions).__name__}")
        self.labels = LabelSet.of(labels)
        self.instructions = instructions
        self.system_prompt = system_prompt("prompt", self.labels, None, instructions)

    def __repr__(self) -> str:
        return (
            f"ClassificationTask({list(self.labels.names)!r}, instructions={self.instructions!r})"
        )

    # --- the prompt ----------------------------------------------------------------------

    def messages(self, text: str) -> list[dict[str, Any]]:
        """What the model is sent for ``text``: the task's system prompt, then the text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, not {type(text).__name__}")
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": text},
        ]

    def dataset(self, texts: Iterable[str], labels: Iterable[str]) -> Dataset:
        """Training examples: each text's :meth:`messages`, then its label as the answer.

        Raises:
            TypeError: ``texts`` or ``labels`` is one string.
            ValueError: the lengths differ, or a label is not one of the task's.
        """
        for name, value in (("texts", texts), ("labels", labels)):
            if isinstance(value, str):
                raise TypeError(f"{name} must be a list, not one string")
        golds = list(labels)
        unknown = sorted({g for g in golds if g not in self.labels.names}, key=str)
        if unknown:
            raise ValueError(f"labels {unknown!r} are not among {list(self.labels.names)!r}")
        return Dataset.from_pairs(texts, golds, system=self.system_prompt)

    def warm_up(self, *, model: str, base_model: str | None = None) -> None:
        """Load ``model``'s token encoding ahead of the first call (see :func:`warm_up`)."""
        warm_up(model=model, base_model=base_model)

    # --- asking --------------------------------------------------------------------------

    def classify(
        self,
        text: str,
        *,
        model: str,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[TaskKwargs],
    ) -> Classification:
        """Classify ``text`` with ``model``, sending exactly the task's training prompt.

        Args:
            text: the text to classify.
            model: the model (or Azure deployment) to ask.
            client: an ``openai.OpenAI`` client; omitted, one is built from ``OPENAI_*``.
            retry: how transient errors are retried.
            **options: ``technique``, ``abstain_below``, ``reasks``, ``base_model``, each
                described at :class:`~finetune_kit.ClassifyOptions` (the task's prompt takes
                the place of ``instructions`` and ``examples``).

        Raises:
            TypeError: an unknown keyword, or an argument of the wrong type.
        """
        call = self._call("classify", model, client, retry, options)
        return classify_with(self._prompt(text), call)

    async def aclassify(
        self,
        text: str,
        *,
        model: str,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[TaskKwargs],
    ) -> Classification:
        """The async sibling of :meth:`classify`."""
        call = self._call("aclassify", model, client, retry, options)
        return await aclassify_with(self._prompt(text), call)

    def classify_many(
        self,
        texts: Sequence[str],
        *,
        model: str,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[TaskManyKwargs],
    ) -> list[ItemResult]:
        """:meth:`classify` for many texts (see :func:`~finetune_kit.classify_many`).

        The ``**options`` also take ``concurrency`` (requests in flight at once) and
        ``progress`` (show a progress bar); the other arguments are those of :meth:`classify`.
        """
        settings, rest = ManySettings.split(options)
        call = self._call("classify_many", model, client, retry, rest)
        return run_many(self._prompts(texts), call, settings)

    async def aclassify_many(
        self,
        texts: Sequence[str],
        *,
        model: str,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[TaskManyKwargs],
    ) -> list[ItemResult]:
        """The async sibling of :meth:`classify_many`."""
        settings, rest = ManySettings.split(options)
        call = self._call("aclassify_many", model, client, retry, rest)
        return await arun_many(self._prompts(texts), call, settings)

    def evaluate(
        self,
        data: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        *,
        model: str,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[TaskManyKwargs],
    ) -> Evaluation:
        """Score ``model`` on labelled held-out data, asked exactly as in training.

        Args:
            data: a JSONL path, a :class:`~finetune_kit.Dataset` (e.g. a split of
                :meth:`dataset`) or dicts. Chat examples are sent as they are (minus the
                final answer); ``{"text", "label"}`` records get the task's prompt.

        The other arguments are those of :meth:`classify_many`.
        """
        texts, golds = self._held_out(data)
        settings, rest = ManySettings.split(options)
        call = self._call("evaluate", model, client, retry, rest)
        return self._score(golds, run_many(texts, call, settings), model, texts)

    async def aevaluate(
        self,
        data: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        *,
        model: str,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[TaskManyKwargs],
    ) -> Evaluation:
        """The async sibling of :meth:`evaluate`."""
        texts, golds = self._held_out(data)
        settings, rest = ManySettings.split(options)
        call = self._call("aevaluate", model, client, retry, rest)
        return self._score(golds, await arun_many(texts, call, settings), model, texts)

    # --- helpers: each call built once, run by the sync or the async runner ---------------

    def _call(
        self,
        method: str,
        model: str,
        client: ClientT | None,
        retry: RetryPolicy | None,
        options: Mapping[str, object],
    ) -> Call[ClientT]:
        where = f"ClassificationTask.{method}()"
        # Checked here too: ClassifyOptions would take instructions/examples, which the task's
        # prompt replaces, so they are unknown keywords of the task.
        check_keywords(where, options, TaskKwargs.__annotations__)
        checked = ClassifyOptions.from_kwargs(where, options)
        return Call(where, self.labels, model, client, retry, checked, as_trained=True)

    def _prompts(self, texts: Sequence[TextInput]) -> list[TextInput]:
        # Texts already sent as trained (conversations) pass unchanged.
        return [self._prompt(t) for t in check_texts(texts)]

    def _score(
        self, golds: list[str], results: list[ItemResult], model: str, texts: list[TextInput]
    ) -> Evaluation:
        return Evaluation.from_predictions(
            golds, results, labels=self.labels.names, model=model, inputs=texts
        )

    def _prompt(self, text: TextInput) -> TextInput:
        return self.messages(text) if isinstance(text, str) else text

    def _held_out(
        self, data: str | os.PathLike[str] | Iterable[Mapping[str, Any]]
    ) -> tuple[list[TextInput], list[str]]:
        texts: list[TextInput] = []
        golds: list[str] = []
        for conversation, gold in evaluation_items(data, text_prompt=self.messages):
            texts.append(conversation)
            golds.append(gold)
        return texts, golds
