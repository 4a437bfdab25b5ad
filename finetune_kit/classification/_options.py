"""ClassifyOptions: what every classify entry point takes besides the text, checked once.

Each entry point (``classify``, ``classify_many``, their async siblings, the batch helper,
``TunedModel`` and :class:`~finetune_kit.ClassificationTask`) builds one frozen
:class:`ClassifyOptions` from its keywords, and with it one :class:`Call`, which it hands to
a runner (``classify_with``, ``run_many``, ``run_batch`` or an async sibling); the checks
here run at the call, before any request, and name the argument at fault.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypedDict, TypeVar, cast

import openai

from .._core.keywords import check_keywords
from .._core.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from ._labels import LabelSet, LabelsInput
    from ._prompts import ExamplesInput, TextInput
    from ._results import TechniqueChoice

__all__ = [
    "Call",
    "ClassifyKwargs",
    "ClassifyOptions",
    "check_concurrency",
    "check_model",
    "check_retry",
    "check_text",
    "check_texts",
    "split_settings",
]

TECHNIQUES: Final = ("logit_bias", "structured", "prompt")

ClientT = TypeVar("ClientT", openai.OpenAI, openai.AsyncOpenAI)


class ClassifyKwargs(TypedDict, total=False):
    """The keywords every classify entry point takes besides the text, the labels and the model.

    Entry points declare them once as ``**options: Unpack[ClassifyKwargs]`` (type checkers and
    editors see each keyword) and hand them to :meth:`ClassifyOptions.of`, which checks them
    and holds the defaults; :class:`ClassifyOptions` documents each one.
    """

    instructions: str | None
    examples: ExamplesInput | None
    technique: TechniqueChoice
    abstain_below: float | None
    reasks: int
    base_model: str | None


@dataclass(frozen=True)
class ClassifyOptions:
    """How to classify, the same for every text of a call.

    Attributes:
        instructions: what the classification is about, first in the system prompt (default
            ``"Classify the text."``). Unused when a conversation is sent as trained.
        examples: few-shot (text, label) pairs shown as earlier turns.
        technique: ``"auto"`` walks the ladder as the endpoint allows; a named technique is
            used or fails.
        abstain_below: return ``label=None`` when the chosen label's probability is below
            this (and, instead of raising, when no label can be read from the answer).
        reasks: how many times the ``prompt`` technique asks again after an answer that is
            none of the labels.
        base_model: the model whose token encoding to use when the model's name does not tell
            (an Azure deployment, a local alias).
    """

    instructions: str | None = None
    examples: tuple[tuple[str, str], ...] = ()
    technique: TechniqueChoice = "auto"
    abstain_below: float | None = None
    reasks: int = 2
    base_model: str | None = None

    @classmethod
    def of(
        cls,
        *,
        instructions: str | None = None,
        examples: ExamplesInput | None = None,
        technique: TechniqueChoice = "auto",
        abstain_below: float | None = None,
        reasks: int = 2,
        base_model: str | None = None,
    ) -> ClassifyOptions:
        """Check the keywords the entry points take and freeze them.

        Raises:
            TypeError: an argument of the wrong type (the message names it).
            ValueError: an unknown technique, a threshold outside [0, 1], a negative
                ``reasks``, a blank ``base_model``.
        """
        if instructions is not None and not isinstance(instructions, str):
            raise TypeError(f"instructions must be a string, not {type(instructions).__name__}")
        if technique not in ("auto", *TECHNIQUES):
            raise ValueError(f"technique must be 'auto' or one of {TECHNIQUES}, not {technique!r}")
        threshold: object = abstain_below
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
                raise TypeError(
                    f"abstain_below must be a number, not {type(abstain_below).__name__}"
                )
            if not 0.0 <= float(threshold) <= 1.0:
                raise ValueError(f"abstain_below is a probability in [0, 1], not {threshold}")
        if isinstance(reasks, bool) or not isinstance(reasks, int):
            raise TypeError(f"reasks must be an int, not {type(reasks).__name__}")
        if reasks < 0:
            raise ValueError("reasks cannot be negative")
        if base_model is not None:
            check_model(base_model, "base_model")
        return cls(
            instructions=instructions,
            examples=_examples(examples),
            technique=technique,
            abstain_below=None if abstain_below is None else float(abstain_below),
            reasks=reasks,
            base_model=base_model,
        )

    @classmethod
    def from_kwargs(cls, where: str, options: Mapping[str, object]) -> ClassifyOptions:
        """:meth:`of` for an entry point's ``**options``, naming the entry point (``where``)
        when a keyword is none of :class:`ClassifyKwargs`.

        Raises:
            TypeError: an unknown keyword, or an argument of the wrong type.
            ValueError: as :meth:`of`.
        """
        check_keywords(where, options, ClassifyKwargs.__annotations__)
        return cls.of(**cast("ClassifyKwargs", options))


@dataclass(frozen=True)
class Call(Generic[ClientT]):
    """One classify call as its entry point hands it to a runner: everything but the texts
    and the runner's own settings (``concurrency``, ``BatchSettings``), built once.

    The sync runners take a ``Call[openai.OpenAI]``, the async ones a
    ``Call[openai.AsyncOpenAI]``. ``model``, ``retry`` and ``client`` are checked by the runner
    (``prepare_call``), in that order, so an argument error comes before a client is built
    from the environment.

    Attributes:
        where: the entry point, as errors name it (``"classify_many()"``,
            ``"TunedModel.evaluate()"``, ...).
        labels: the label set.
        model: the model (or Azure deployment) to ask.
        client: the caller's client; None for the default one.
        retry: how transient errors are retried; None for the default policy.
        options: how to classify, checked.
        as_trained: each text is a conversation sent exactly as given (see ``Spec``).
    """

    where: str
    labels: LabelsInput | LabelSet
    model: str
    client: ClientT | None
    retry: RetryPolicy | None
    options: ClassifyOptions
    as_trained: bool = False

    @classmethod
    def of(
        cls,
        where: str,
        labels: LabelsInput | LabelSet,
        model: str,
        client: ClientT | None,
        retry: RetryPolicy | None,
        options: Mapping[str, object],
    ) -> Call[ClientT]:
        """The call of an entry point that took ``options`` as ``**options``.

        Raises:
            TypeError: an unknown keyword (naming ``where``), or an option of the wrong type.
            ValueError: an option with a wrong value.
        """
        return cls(where, labels, model, client, retry, ClassifyOptions.from_kwargs(where, options))


def split_settings(
    options: Mapping[str, object], names: Collection[str]
) -> tuple[dict[str, Any], ClassifyKwargs]:
    """A runner's own keywords (``names``: the fields of ``ManySettings`` or
    ``BatchSettings``) among an entry point's ``**options``, and the rest: classify's options,
    or unknown keywords for :meth:`ClassifyOptions.from_kwargs` to refuse by name."""
    own = {k: v for k, v in options.items() if k in names}
    rest = {k: v for k, v in options.items() if k not in names}
    return own, cast("ClassifyKwargs", rest)


def _examples(examples: object) -> tuple[tuple[str, str], ...]:
    if examples is None:
        return ()
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence):
        raise TypeError(
            f"examples must be a list of (text, label) pairs, not {type(examples).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    for number, pair in enumerate(examples):
        if (
            isinstance(pair, (str, bytes))
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            raise TypeError(f"examples[{number}] must be a (text, label) pair of strings: {pair!r}")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def check_model(model: object, name: str = "model") -> str:
    """``model`` as a non-blank string.

    Raises:
        TypeError: not a string.
        ValueError: blank.
    """
    if not isinstance(model, str):
        raise TypeError(f"{name} must be a model name (a string), not {type(model).__name__}")
    if not model.strip():
        raise ValueError(f"{name} cannot be empty")
    return model


def check_text(text: object, name: str = "text") -> None:
    """A string with something to classify, or a non-empty list of messages with roles.

    Raises:
        TypeError: neither a string nor a sequence of message mappings.
        ValueError: an empty or blank string, an empty conversation, a message without role.
    """
    if isinstance(text, str):
        if not text.strip():
            raise ValueError(f"{name} is empty: there is nothing to classify")
        return
    if isinstance(text, bytes) or not isinstance(text, Sequence):
        raise TypeError(
            f"{name} must be a string or a list of chat messages, not {type(text).__name__}"
        )
    if not text:
        raise ValueError(f"{name} is an empty list of messages")
    for message in text:
        if not isinstance(message, Mapping):
            raise TypeError(f"{name} must hold chat messages (dicts), not {message!r}")
        if "role" not in message:
            raise ValueError(f"every message of {name} needs a 'role': {message!r}")


def check_texts(texts: object) -> list[TextInput]:
    """The texts of a many-texts call as a list, each checked.

    Raises:
        TypeError: ``texts`` is one string (it would be classified character by character),
            or not iterable, or an item is neither a string nor a message list.
        ValueError: an item is empty.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "texts must be a list of texts, not one string (it would be classified one "
            "character at a time); wrap it: [text]"
        )
    if isinstance(texts, Mapping) or not hasattr(texts, "__iter__"):
        raise TypeError(f"texts must be a list of texts, not {type(texts).__name__}")
    items: list[Any] = list(cast("Iterable[Any]", texts))
    for i, item in enumerate(items):
        check_text(item, f"texts[{i}]")
    return items


def check_concurrency(concurrency: object, n: int) -> int:
    """The number of workers to start: ``concurrency``, never more than the texts.

    Raises:
        TypeError: not an int.
        ValueError: below 1.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"concurrency must be an int, not {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    return max(1, min(concurrency, n))


def check_retry(retry: object) -> RetryPolicy | None:
    """``retry`` when it is a RetryPolicy or None.

    Raises:
        TypeError: anything else.
    """
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(
            f"retry must be a RetryPolicy (or None for the default), not {type(retry).__name__}"
        )
    return retry
