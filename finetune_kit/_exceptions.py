"""Exceptions raised by finetune_kit.

The hierarchy::

    FinetuneKitError
    ├── DatasetError
    │   └── DatasetValidationError      .problems (each with line, code, message)
    ├── TokenizerError                  an encoding cannot be loaded (offline, no shipped copy)
    ├── JobError                        .job_id
    │   ├── JobFailedError              .code, .message, .param from the service
    │   ├── JobCancelledError
    │   └── JobTimeoutError             also a TimeoutError; the job keeps running
    ├── FineTuningUnavailableError      job creation refused (wind-down, permissions), with why
    ├── ClassificationError             .raw_output, .labels
    └── DeploymentError                 .status_code, .code: Azure refused or failed a deployment

The SDK's own errors (``openai.RateLimitError``, ``openai.BadRequestError``, ...) reach the
caller unchanged once the retry layer gives up: we wrap only where we add meaning, and always
chain the original (``raise ... from exc``) so nothing the service said is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .datasets._reports import Problem

__all__ = [
    "ClassificationError",
    "DatasetError",
    "DatasetValidationError",
    "DeploymentError",
    "FineTuningUnavailableError",
    "FinetuneKitError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "TokenizerError",
]


class FinetuneKitError(Exception):
    """Base class of every error finetune_kit raises itself."""


class DatasetError(FinetuneKitError):
    """Training data cannot be read or used."""


class DatasetValidationError(DatasetError):
    """Validation found errors; ``problems`` lists them (errors first, then warnings)."""

    def __init__(self, problems: Sequence[Problem], *, source: str | None = None) -> None:
        self.problems: list[Problem] = list(problems)
        self.source = source
        errors = [p for p in self.problems if p.severity == "error"]
        where = f" in {source}" if source else ""
        head = f"{len(errors)} validation error{'s' if len(errors) != 1 else ''}{where}"
        shown = "\n".join(f"  {p}" for p in errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        super().__init__(f"{head}:\n{shown}{more}" if shown else head)


class TokenizerError(FinetuneKitError):
    """A token encoding cannot be loaded (no network and no usable shipped copy)."""


class JobError(FinetuneKitError):
    """Something about a fine-tuning job went wrong; ``job_id`` names the job."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobFailedError(JobError):
    """The service reports the job as failed; ``code``/``message``/``param`` are its words."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        code: str | None = None,
        service_message: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, job_id=job_id)
        self.code = code
        self.message = service_message
        self.param = param


class JobCancelledError(JobError):
    """The job was cancelled before it finished."""


class JobTimeoutError(JobError, TimeoutError):
    """Waiting gave up; the job itself keeps running on the service."""


class FineTuningUnavailableError(FinetuneKitError):
    """The service refused to create a fine-tuning job; the message explains why."""


class ClassificationError(FinetuneKitError):
    """The model's answer could not be mapped to one of the labels."""

    def __init__(
        self, message: str, *, raw_output: str | None = None, labels: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        self.labels: tuple[str, ...] = tuple(labels)


class DeploymentError(FinetuneKitError):
    """The Azure control plane refused or failed a deployment request.

    Attributes:
        status_code: the HTTP status, or None when no reply came (connection error, timeout).
        code: ARM's error code (``InsufficientQuota``, ``AuthorizationFailed``, ...), if any.
        headers: the reply's headers (``Retry-After`` is honoured by the retry layer).
        ambiguous: True when the request may have taken effect although no reply came.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.headers = dict(headers or {})
        self.ambiguous = ambiguous
