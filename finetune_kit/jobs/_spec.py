"""Portable job specs: a job's whole recipe, to re-run it against another endpoint.

OpenAI is winding down fine-tuning (see the lifecycle docs); Azure OpenAI and other endpoints go on.
A :class:`JobSpec` holds what made a job what it is — the base model, the method and its
hyperparameters (as the service resolved them, e.g. the epochs it chose), the grader, suffix,
seed, the training tier, and the SHA-256 of the training and validation data — so the same
job can be created elsewhere from the same data. The data itself is not in the spec: fine-tune
files cannot be downloaded from OpenAI, so the caller passes the datasets again and the hashes
prove they are the very same bytes.

Hashes are read from the file names :meth:`Dataset.upload` gives (``<stem>-sha256-<hex>.jsonl``);
for a file uploaded otherwise the hash is unknown (None) and no check can be made.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Final

from .._core.client import Request

if TYPE_CHECKING:
    from openai.types import FileObject
    from openai.types.fine_tuning import FineTuningJob

    from .._core.client import Flow
    from ..datasets._dataset import Dataset
    from ._options import JobOptions

__all__ = ["JobSpec", "spec_flow"]

SPEC_VERSION: Final = 1
_HASH: Final = re.compile(r"-sha256-([0-9a-f]{64})\.jsonl$")
#: What a fine-tuned model id says after the base: ``ft:<base>:<org>:<suffix>:<id>``.
_FT_NAME: Final = re.compile(r"^ft:[^:]+:[^:]*:(?P<suffix>[^:]*):[^:]+$")


@dataclass(frozen=True)
class JobSpec:
    """A fine-tuning job's recipe, independent of the endpoint that ran it.

    Attributes:
        model: the base model the job trained (as the service named it).
        method: ``supervised``, ``dpo`` or ``reinforcement``.
        hyperparameters: as the service resolved them (``n_epochs`` it chose, ...).
        training_sha256: SHA-256 of the training file's bytes, when known.
        validation_sha256: likewise for the validation file (None when there was none).
        has_validation: whether the job had a validation file.
        grader: the reinforcement grader, if any.
        suffix: the model-name suffix, when it can be read from the tuned model's id.
        seed: the training seed.
        tier: the training tier (Azure ``trainingType``), if one was chosen.
        source_job: the job this spec was taken from (for the record).
        version: the spec format's version.
    """

    model: str
    method: str
    hyperparameters: dict[str, object] = field(default_factory=dict)
    training_sha256: str | None = None
    validation_sha256: str | None = None
    has_validation: bool = False
    grader: dict[str, object] | None = None
    suffix: str | None = None
    seed: int | None = None
    tier: str | None = None
    source_job: str | None = None
    version: int = SPEC_VERSION

    def to_json(self) -> str:
        """The spec as JSON (stable key order), to store next to the data."""
        return json.dumps(asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        """Read a spec written by :meth:`to_json`.

        Raises:
            ValueError: not a spec, or a version this library does not know.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not a job spec: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            raise ValueError("not a job spec: expected an object with a 'model'")
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"job spec version {data.get('version')!r} is not supported")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"job spec has unknown fields: {', '.join(unknown)}")
        return cls(**data)

    def check_data(self, training_sha256: str, validation_sha256: str | None) -> None:
        """Refuse data that is not the data the spec was trained on.

        Raises:
            ValueError: a hash differs, or validation data is missing or unexpected.
        """
        if self.training_sha256 and training_sha256 != self.training_sha256:
            raise ValueError(
                f"the training data differs from the spec's (sha256 {training_sha256[:12]}... "
                f"instead of {self.training_sha256[:12]}...)"
            )
        if self.has_validation and validation_sha256 is None:
            raise ValueError("the spec's job had validation data: pass validation=")
        if not self.has_validation and validation_sha256 is not None:
            raise ValueError("the spec's job had no validation data")
        if self.validation_sha256 and validation_sha256 != self.validation_sha256:
            raise ValueError("the validation data differs from the spec's")

    def options(
        self,
        training: Dataset,
        *,
        validation: Dataset | None = None,
        idempotency_key: str | None = None,
    ) -> JobOptions:
        """The :class:`JobOptions` that re-create the job from ``training`` (and
        ``validation``), after checking they are the data the spec was trained on.

        The spec's training tier comes along: it applies on Azure only, so a spec taken on
        Azure and re-run elsewhere needs ``dataclasses.replace(spec, tier=None)`` first.
        """
        from ._options import JobOptions

        self.check_data(training.content_hash(), validation.content_hash() if validation else None)
        return JobOptions(
            model=self.model,
            validation=validation,
            method=self.method,
            hyperparameters=dict(self.hyperparameters) or None,
            grader=dict(self.grader) if self.grader else None,
            suffix=self.suffix,
            seed=self.seed,
            idempotency_key=idempotency_key,
            tier=self.tier,
        )


def _file_hash(file: FileObject) -> str | None:
    found = _HASH.search(file.filename or "")
    return found.group(1) if found else None


def _retrieve(file_id: str) -> Request:
    return Request(f"retrieve file {file_id}", lambda c: c.files.retrieve(file_id))


def _tier_of(raw: FineTuningJob) -> str | None:
    """The library's name for the tier Azure reports (``trainingType``), if any."""
    from ._options import TRAINING_TYPES

    reported = (raw.model_extra or {}).get("trainingType")
    if not isinstance(reported, str):
        return None
    names = {wire.lower(): tier for tier, wire in TRAINING_TYPES.items()}
    names["developertier"] = "developer"
    return names.get(reported.lower())


def spec_flow(
    raw: FineTuningJob,
    *,
    method: str,
    hyperparameters: dict[str, object],
    tier: str | None = None,
) -> Flow[JobSpec]:
    """Build the spec of job ``raw``, reading its files' names for their hashes."""
    training = yield _retrieve(raw.training_file)
    validation = None
    if raw.validation_file:
        validation = yield _retrieve(raw.validation_file)
    config = getattr(getattr(raw, "method", None), method, None)
    grader = getattr(config, "grader", None)
    # Azure reports the suffix as it was given; OpenAI only inside the tuned model's id.
    suffix = getattr(raw, "user_provided_suffix", None) or (raw.model_extra or {}).get(
        "user_provided_suffix"
    )
    if suffix is None and raw.fine_tuned_model:
        found = _FT_NAME.match(raw.fine_tuned_model)
        suffix = (found.group("suffix") or None) if found else None
    if tier is None:
        tier = _tier_of(raw)
    return JobSpec(
        model=raw.model,
        method=method,
        hyperparameters=dict(hyperparameters),
        training_sha256=_file_hash(training),
        validation_sha256=_file_hash(validation) if validation is not None else None,
        has_validation=raw.validation_file is not None,
        grader=grader.model_dump() if grader is not None else None,
        suffix=suffix,
        seed=raw.seed,
        tier=tier,
        source_job=raw.id,
    )
