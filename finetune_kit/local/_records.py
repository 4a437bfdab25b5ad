"""Typed records of the local backend's objects, and their API and storage views.

Each record holds what the service returns plus the private bookkeeping the backend needs
(kept out of the API view). ``to_api()`` is the JSON the client sees; ``to_doc()`` /
``from_doc()`` are what :class:`~finetune_kit.local._persist.Persistence` stores. Fields
that are free-form JSON in the API itself (``method``, ``metadata``, ``error``...) stay
dicts; everything the backend reasons about is a typed field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "BatchRecord",
    "CheckpointRecord",
    "EventRecord",
    "FileRecord",
    "JobRecord",
    "ModelRecord",
    "UploadRecord",
]

_R = TypeVar("_R")


class _Record:
    """Shared storage view: every dataclass field, as JSON."""

    def to_doc(self) -> dict[str, Any]:
        """The stored document (all fields)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_doc(cls: type[_R], doc: dict[str, Any]) -> _R:
        """The record a stored document describes (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in doc.items() if k in names})


@dataclass
class FileRecord(_Record):
    """A stored file's metadata (its bytes are a blob under the same id)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str

    def to_api(self) -> dict[str, Any]:
        """The files API's ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


@dataclass
class UploadRecord(_Record):
    """A multi-part upload; its parts are blobs until it completes."""

    id: str
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    mime_type: str
    status: str = "pending"
    file: dict[str, Any] | None = None
    parts: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The uploads API's ``upload`` object."""
        return {
            "id": self.id,
            "object": "upload",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "file": self.file,
        }


@dataclass
class JobRecord(_Record):
    """A fine-tuning job and where its lifecycle stands."""

    id: str
    created_at: int
    model: str
    method: dict[str, Any]
    seed: int
    training_file: str
    validation_file: str | None
    suffix: str | None
    metadata: dict[str, str] | None
    integrations: list[Any] | None
    hyperparameters: dict[str, Any] | None
    # Created through Azure's paths: Azure-style model ids, and the training tier it ran on.
    azure: bool = False
    training_type: str | None = None
    status: str = "validating_files"
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    result_files: list[str] = field(default_factory=list)
    trained_tokens: int | None = None
    estimated_finish: int | None = None
    # Lifecycle: when the current phase began, steps revealed so far, steps done before
    # the last pause, total steps and seconds per step (known once trained).
    phase_start: float = 0.0
    revealed: int = 0
    done: int = 0
    total: int | None = None
    step_seconds: float = 0.0

    def to_api(self) -> dict[str, Any]:
        """The ``fine_tuning.job`` object."""
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "created_at": self.created_at,
            "error": self.error,
            "fine_tuned_model": self.fine_tuned_model,
            "finished_at": self.finished_at,
            "hyperparameters": self.hyperparameters,
            "model": self.model,
            "organization_id": "org-local",
            "result_files": list(self.result_files),
            "seed": self.seed,
            "status": self.status,
            "trained_tokens": self.trained_tokens,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "estimated_finish": self.estimated_finish,
            "integrations": self.integrations,
            "metadata": self.metadata,
            "method": self.method,
            "user_provided_suffix": self.suffix,
            **({"trainingType": self.training_type} if self.azure else {}),
        }


@dataclass
class EventRecord(_Record):
    """One job event."""

    id: str
    job_id: str
    created_at: int
    level: str
    message: str
    data: dict[str, Any]
    type: str

    def to_api(self) -> dict[str, Any]:
        """The ``fine_tuning.job.event`` object."""
        return {
            "id": self.id,
            "object": "fine_tuning.job.event",
            "created_at": self.created_at,
            "level": self.level,
            "message": self.message,
            "data": self.data,
            "type": self.type,
        }


@dataclass
class CheckpointRecord(_Record):
    """One kept checkpoint (its model is a :class:`ModelRecord` of the same name)."""

    id: str
    job_id: str
    created_at: int
    model: str
    step: int
    metrics: dict[str, float | None]

    def to_api(self) -> dict[str, Any]:
        """The ``fine_tuning.job.checkpoint`` object."""
        return {
            "id": self.id,
            "object": "fine_tuning.job.checkpoint",
            "created_at": self.created_at,
            "fine_tuned_model_checkpoint": self.model,
            "fine_tuning_job_id": self.job_id,
            "metrics": dict(self.metrics),
            "step_number": self.step,
        }


@dataclass
class ModelRecord(_Record):
    """A tuned model or checkpoint this backend trained (weights stored apart)."""

    id: str
    created: int
    base: str
    job_id: str

    def to_api(self) -> dict[str, Any]:
        """The ``model`` object; the backend's own models never retire."""
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": "local",
            "shutdown_date": None,
        }


@dataclass
class BatchRecord(_Record):
    """A batch over ``/v1/chat/completions``."""

    id: str
    input_file_id: str
    created_at: int
    metadata: dict[str, str] | None
    endpoint: str = "/v1/chat/completions"
    completion_window: str = "24h"
    status: str = "validating"
    errors: dict[str, Any] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    phase_start: float = 0.0

    def to_api(self) -> dict[str, Any]:
        """The ``batch`` object."""
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.created_at + 86_400,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": None,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
        }
