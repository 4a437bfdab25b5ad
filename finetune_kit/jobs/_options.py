"""What a job is created with, checked at the call: :class:`JobOptions` and the argument rules.

One frozen options object carries everything ``Job.create`` / ``AsyncJob.create`` (and the
``train`` command) pass down; each shell builds it once and everything below takes it whole, so
no keyword list is copied past the public signatures. Its checks, and those of the other entry
points' arguments, raise at the call with the argument's name, before any request.

A ``str`` where data goes is the id of an uploaded file. A string that names a file on disk (or
looks like a path: a separator or a data file's extension) is refused with a hint to load it as
a Dataset: sending a path as a file id would fail at the service with a confusing message, and
loading it silently would upload whatever the path held without the caller seeing a Dataset.
"""

from __future__ import annotations

import math
import os
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypedDict, cast

import openai

from .._core.keywords import check_keywords
from .._core.retry import RetryPolicy
from ..datasets._dataset import Dataset
from ..facts._limits import MAX_METADATA_PAIRS, MAX_SUFFIX_CHARS
from ..facts._tokens import FinetuneKitWarning

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..facts._models import Method, Tier

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "TIERS",
    "TRAINING_TYPES",
    "JobKwargs",
    "JobOptions",
    "check_client",
    "check_create",
    "check_data",
    "check_job_id",
    "check_list",
    "check_retry",
    "check_wait",
    "warn_all",
]

#: The metadata key under which each job carries its idempotency key.
IDEMPOTENCY_METADATA_KEY: Final = "finetune_kit_idempotency_key"

METHODS: Final[tuple[Method, ...]] = ("supervised", "dpo", "reinforcement")
MAX_METADATA_KEY: Final = 64
MAX_METADATA_VALUE: Final = 512
_DATA_EXTENSIONS: Final = (".jsonl", ".json", ".csv", ".txt", ".gz")
#: Azure's training tiers as this library names them (see ``facts.Tier``).
TIERS: Final[tuple[Tier, ...]] = ("standard", "global", "developer")
#: How Azure's job-create body spells each tier (``trainingType``; Microsoft's
#: "Customize a model ... with the OpenAI Python SDK", checked 2026-12).
TRAINING_TYPES: Final[Mapping[Tier, str]] = types.MappingProxyType(
    {"standard": "Standard", "global": "GlobalStandard", "developer": "Developer"}
)


def _kind(value: object) -> str:
    return type(value).__name__


def check_data(name: str, value: object) -> None:
    """Refuse anything but a Dataset or an uploaded file's id, naming the argument.

    Raises:
        TypeError: ``value`` is neither a Dataset nor a str (a path object gets a hint).
        ValueError: ``value`` is an empty string or a path rather than a file id.
    """
    if isinstance(value, Dataset):
        return
    if isinstance(value, os.PathLike):
        raise TypeError(
            f"{name} must be a Dataset or an uploaded file's id, not a path: load the file "
            f"with Dataset.from_jsonl({os.fspath(value)!r})"
        )
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a Dataset or an uploaded file's id ('file-...'), not {_kind(value)}"
        )
    if not value.strip():
        raise ValueError(f"{name} must be a Dataset or a non-empty file id, not {value!r}")
    if value.startswith("file-"):
        return
    path_like = (
        "/" in value or os.sep in value or value.lower().endswith(_DATA_EXTENSIONS)
    ) or Path(value).exists()
    if path_like:
        raise ValueError(
            f"{name}={value!r} is a path, not an uploaded file's id: pass "
            f"Dataset.from_jsonl({value!r}) to validate and upload it"
        )


def _mapping(name: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (a dict), not {_kind(value)}")
    items: dict[object, Any] = dict(value)
    bad = next((k for k in items if not isinstance(k, str)), None)
    if bad is not None:
        raise TypeError(f"{name} keys must be strings, not {_kind(bad)} ({bad!r})")
    return cast("dict[str, Any]", items)


def _metadata(value: object) -> dict[str, str]:
    pairs = _mapping("metadata", value) or {}
    for key, item in pairs.items():
        if not isinstance(item, str):
            raise TypeError(f"metadata[{key!r}] must be a string, not {_kind(item)}")
        if len(key) > MAX_METADATA_KEY:
            raise ValueError(f"metadata keys are at most {MAX_METADATA_KEY} characters: {key!r}")
        if len(item) > MAX_METADATA_VALUE:
            raise ValueError(f"metadata[{key!r}] is longer than {MAX_METADATA_VALUE} characters")
    if IDEMPOTENCY_METADATA_KEY in pairs:
        raise ValueError(f"metadata key {IDEMPOTENCY_METADATA_KEY!r} is finetune_kit's own")
    if len(pairs) >= MAX_METADATA_PAIRS:
        raise ValueError(
            f"metadata holds at most {MAX_METADATA_PAIRS} pairs and finetune_kit needs one "
            f"for the idempotency key: pass at most {MAX_METADATA_PAIRS - 1}"
        )
    return pairs


def _optional_str(name: str, value: object, longest: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {_kind(value)}")
    if not 0 < len(value) <= longest:
        raise ValueError(f"{name} must be 1 to {longest} characters, not {len(value)}")


def _integrations(value: object) -> tuple[dict[str, Any], ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"integrations must be a list of dicts, not {_kind(value)}")
    found = [_mapping("each integration", item) for item in cast("Sequence[object]", value)]
    return tuple(item for item in found if item is not None)


class JobKwargs(TypedDict, total=False):
    """The keywords ``Job.create`` / ``AsyncJob.create`` take besides the data and the model.

    Declared once and taken as ``**options: Unpack[JobKwargs]`` (type checkers and editors see
    each keyword); :meth:`JobOptions.from_kwargs` checks them and :class:`JobOptions` documents
    each one.
    """

    validation: Dataset | str | None
    method: str
    hyperparameters: Mapping[str, object] | None
    grader: Mapping[str, object] | None
    suffix: str | None
    seed: int | None
    metadata: Mapping[str, str] | None
    integrations: Sequence[Mapping[str, object]] | None
    idempotency_key: str | None
    tier: str | None


@dataclass(frozen=True)
class JobOptions:
    """Everything a fine-tuning job is created with, except its training data.

    Frozen and checked when built: a wrong type or value raises at once, naming the argument.
    Build one to reuse the same settings from sync and async code, or from a script and the
    command line: ``Job.create_from(train, options)`` / ``await AsyncJob.create_from(...)``.
    ``Job.create(train, model=..., ...)`` builds one from its keywords.

    Attributes:
        model: the base model (or a fine-tuned one to continue from).
        validation: validation data: a Dataset or an uploaded file's id.
        method: ``"supervised"``, ``"dpo"`` or ``"reinforcement"``.
        hyperparameters: the method's hyperparameters (``n_epochs``, ``batch_size``,
            ``learning_rate_multiplier``; DPO ``beta``; RFT ``reasoning_effort``, ...).
        grader: the RFT grader config (required for, and only for, reinforcement).
        suffix: 1 to 64 characters added to the fine-tuned model's name.
        seed: for reproducible training.
        metadata: up to 15 key/value strings to tag the job with.
        integrations: e.g. ``[{"type": "wandb", "wandb": {"project": "..."}}]``.
        idempotency_key: use this key instead of a fresh one per call; a job that already
            carries it is returned instead of creating another (even from another run).
        tier: Azure OpenAI's training tier, ``"standard"``, ``"global"`` or ``"developer"``
            (sent as ``trainingType``); checked against the model's tiers when the job is
            created, and refused on endpoints other than Azure. None: the service's default.

    Raises:
        TypeError: an option has the wrong type.
        ValueError: an option has a wrong value, or options contradict each other.
    """

    model: str
    validation: Dataset | str | None = None
    method: str = "supervised"
    hyperparameters: Mapping[str, object] | None = None
    grader: Mapping[str, object] | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: Mapping[str, str] | None = None
    integrations: Sequence[Mapping[str, object]] | None = None
    idempotency_key: str | None = None
    tier: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str):
            raise TypeError(f"model must be a model name (str), not {_kind(self.model)}")
        if not self.model.strip():
            raise ValueError("model must be a model name, not an empty string")
        if self.validation is not None:
            check_data("validation", self.validation)
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        hyperparameters = _mapping("hyperparameters", self.hyperparameters)
        grader = _mapping("grader", self.grader)
        if self.method == "reinforcement" and grader is None:
            raise ValueError("method='reinforcement' needs grader= (the RFT grader config)")
        if self.method != "reinforcement" and grader is not None:
            raise ValueError(f"grader= is only for method='reinforcement', not {self.method!r}")
        _optional_str("suffix", self.suffix, MAX_SUFFIX_CHARS)
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int, not {_kind(self.seed)}")
        _optional_str("idempotency_key", self.idempotency_key, MAX_METADATA_VALUE)
        if self.tier is not None:
            if not isinstance(self.tier, str):
                raise TypeError(f"tier must be a string, not {_kind(self.tier)}")
            if self.tier not in TIERS:
                raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {self.tier!r}")
        # Copies, read-only: later changes to the caller's dicts must not change the job.
        frozen = {
            "hyperparameters": _readonly(hyperparameters),
            "grader": _readonly(grader),
            "metadata": types.MappingProxyType(_metadata(self.metadata)),
            "integrations": _integrations(self.integrations),
        }
        for name, value in frozen.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_kwargs(cls, where: str, model: str, options: Mapping[str, object]) -> JobOptions:
        """The options an entry point's ``model`` and ``**options`` name, naming the entry
        point (``where``) when a keyword is none of :class:`JobKwargs`.

        Raises:
            TypeError: an unknown keyword, or an option of the wrong type.
            ValueError: as building a :class:`JobOptions`.
        """
        check_keywords(where, options, JobKwargs.__annotations__)
        return cls(model=model, **cast("JobKwargs", options))

    @property
    def method_name(self) -> Method:
        """``method``, typed as the literal it was checked to be."""
        return cast("Method", self.method)

    @property
    def tier_name(self) -> Tier | None:
        """``tier``, typed as the literal it was checked to be."""
        return cast("Tier | None", self.tier)


def _readonly(value: dict[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else types.MappingProxyType(value)


def check_wait(timeout: object, poll_interval: object, on_event: object) -> None:
    """``wait()``'s arguments.

    A ``timeout`` of zero or less is not an error: the job is polled once and, unless it has
    finished, ``JobTimeoutError`` says so, like any other timeout.

    Raises:
        TypeError: a number is not a number, or ``on_event`` is not callable.
        ValueError: ``poll_interval`` is not a positive number of seconds, or ``timeout`` is NaN.
    """
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds or None, not {_kind(timeout)}")
        if math.isnan(timeout):
            raise ValueError("timeout must be a number of seconds or None, not NaN")
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
        raise TypeError(f"poll_interval must be a number of seconds, not {_kind(poll_interval)}")
    if not (poll_interval > 0 and math.isfinite(poll_interval)):
        raise ValueError(f"poll_interval must be a positive number of seconds, not {poll_interval}")
    if on_event is not None and not callable(on_event):
        raise TypeError(f"on_event must be callable (it gets each Event), not {_kind(on_event)}")


def check_list(limit: object, metadata: object) -> dict[str, str] | None:
    """``list()``'s arguments; returns the metadata filter as a plain dict.

    Raises:
        TypeError: ``limit`` is not an int, or ``metadata`` not a mapping of strings.
        ValueError: ``limit`` is less than 1.
    """
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int or None, not {_kind(limit)}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1 (None for all jobs), not {limit}")
    pairs = _mapping("metadata", metadata)
    for key, item in (pairs or {}).items():
        if not isinstance(item, str):
            raise TypeError(f"metadata[{key!r}] must be a string, not {_kind(item)}")
    return pairs or None


def check_job_id(job_id: object) -> None:
    """A job id is a non-empty string.

    Raises:
        TypeError: it is not a string.
        ValueError: it is empty.
    """
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a job id (str, 'ftjob-...'), not {_kind(job_id)}")
    if not job_id.strip():
        raise ValueError("job_id must be a job id ('ftjob-...'), not an empty string")


def check_client(client: object, *, sync: bool) -> None:
    """Refuse the other kind of client (an async one for ``Job``, a sync one for ``AsyncJob``).

    Raises:
        TypeError: ``client`` is the wrong kind of openai client.
    """
    if sync and isinstance(client, openai.AsyncOpenAI):
        raise TypeError("client is an openai.AsyncOpenAI: use AsyncJob, or pass openai.OpenAI")
    if not sync and isinstance(client, openai.OpenAI):
        raise TypeError("client is an openai.OpenAI: use Job, or pass openai.AsyncOpenAI")


def check_retry(retry: object) -> None:
    """``retry=`` is a :class:`RetryPolicy` or None.

    Raises:
        TypeError: it is anything else.
    """
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy or None, not {_kind(retry)}")


def check_create(
    training: object, options: object, client: object, retry: object, *, sync: bool
) -> None:
    """The arguments every create entry point shares, sync or async.

    Raises:
        TypeError: a wrong type (named).
        ValueError: a wrong value (named).
    """
    check_data("training", training)
    if not isinstance(options, JobOptions):
        raise TypeError(f"options must be a JobOptions, not {_kind(options)}")
    check_client(client, sync=sync)
    check_retry(retry)


def warn_all(messages: Sequence[str]) -> None:
    """Emit a create's warnings at the caller's line (caller -> create -> _start -> here)."""
    for message in messages:
        warnings.warn(message, FinetuneKitWarning, stacklevel=4)
