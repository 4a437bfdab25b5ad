"""Typed records of the local backend's objects, and their API and storage views.

Each record holds what the service returns plus the private bookkeeping the backend needs
(kept out of the API view). ``to_api()`` is the JSON the client sees; ``to_doc()`` /
``from_doc()`` are what :class:`~finetune_kit.local._persist.Persistence` stores. Fields
that are free-form JSON in the API itself (``method``, ``metadata``, ``error``...) stay
dicts; everything the backend reasons about is a typed field.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BATCH_PHASES",
    "INTERNAL",
    "BatchRecord",
    "CheckpointRecord",
    "EventRecord",
    "FileRecord",
    "JobRecord",
    "ModelRecord",
    "UploadRecord",
]

_R = TypeVar("_R")

#: Field metadata: a field the backend keeps for itself, left out of the API view.
INTERNAL: Final[Mapping[str, Any]] = {"api": None}


def _api_name(name: str) -> Mapping[str, Any]:
    """Field metadata: the field appears in the API view under ``name``."""
    return {"api": name}


class _Record:
    """Shared views: every dataclass field as JSON for storage; the API's fields for clients.

    The API view is derived from the field list, so each field is declared once: a field
    appears under its own name unless its metadata renames it (``_api_name``) or keeps it
    internal (:data:`INTERNAL`); each record adds its ``object`` type and the fields that are
    constant or computed (``_api_extras``).
    """

    #: The API object's ``object`` value.
    OBJECT: ClassVar[str]
    id: str

    def to_doc(self) -> dict[str, Any]:
        """The stored document (all fields)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_doc(cls: type[_R], doc: dict[str, Any]) -> _R:
        """The record a stored document describes (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in doc.items() if k in names})

    def to_api(self) -> dict[str, Any]:
        """The object the API returns (see the class docstring)."""
        # The service's order: the id, the object type, then the fields.
        view: dict[str, Any] = {"id": self.id, "object": self.OBJECT}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            name = f.metadata.get("api", f.name)
            if name is not None:
                value = getattr(self, f.name)
                # Copies, so a caller's view never aliases the stored record.
                view[name] = copy.copy(value) if isinstance(value, (list, dict)) else value
        view.update(self._api_extras())
        return view

    def _api_extras(self) -> dict[str, Any]:
        """The API fields that are not stored fields (constants, computed values)."""
        return {}


@dataclass
class FileRecord(_Record):
    """A stored file's metadata (its bytes are a blob under the same id)."""

    OBJECT: ClassVar[str] = "file"

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str

    def _api_extras(self) -> dict[str, Any]:
        return {"status": "processed", "status_details": None, "expires_at": None}


@dataclass
class UploadRecord(_Record):
    """A multi-part upload; its parts are blobs until it completes."""

    OBJECT: ClassVar[str] = "upload"

    id: str
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    mime_type: str = field(metadata=INTERNAL)
    status: str = "pending"
    file: dict[str, Any] | None = None
    parts: list[str] = field(default_factory=list, metadata=INTERNAL)


@dataclass
class JobRecord(_Record):
    """A fine-tuning job and where its lifecycle stands."""

    OBJECT: ClassVar[str] = "fine_tuning.job"

    id: str
    created_at: int
    model: str
    method: dict[str, Any]
    seed: int
    training_file: str
    validation_file: str | None
    suffix: str | None = field(metadata=_api_name("user_provided_suffix"))
    metadata: dict[str, str] | None
    integrations: list[Any] | None
    hyperparameters: dict[str, Any] | None
    # Created through Azure's paths: Azure-style model ids, and the training tier it ran on.
    azure: bool = field(default=False, metadata=INTERNAL)
    training_type: str | None = field(default=None, metadata=INTERNAL)
    status: str = "validating_files"
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    result_files: list[str] = field(default_factory=list)
    trained_tokens: int | None = None
    estimated_finish: int | None = None
    # Lifecycle: when the current phase began, steps revealed so far, steps done before
    # the last pause, total steps and seconds per step (known once trained).
    phase_start: float = field(default=0.0, metadata=INTERNAL)
    revealed: int = field(default=0, metadata=INTERNAL)
    done: int = field(default=0, metadata=INTERNAL)
    total: int | None = field(default=None, metadata=INTERNAL)
    step_seconds: float = field(default=0.0, metadata=INTERNAL)

    def _api_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"organization_id": "org-local"}
        if self.azure:
            extras["trainingType"] = self.training_type
        return extras


@dataclass
class EventRecord(_Record):
    """One job event."""

    OBJECT: ClassVar[str] = "fine_tuning.job.event"

    id: str
    job_id: str = field(metadata=INTERNAL)
    created_at: int
    level: str
    message: str
    data: dict[str, Any]
    type: str


@dataclass
class CheckpointRecord(_Record):
    """One kept checkpoint (its model is a :class:`ModelRecord` of the same name)."""

    OBJECT: ClassVar[str] = "fine_tuning.job.checkpoint"

    id: str
    job_id: str = field(metadata=_api_name("fine_tuning_job_id"))
    created_at: int
    model: str = field(metadata=_api_name("fine_tuned_model_checkpoint"))
    step: int = field(metadata=_api_name("step_number"))
    metrics: dict[str, float | None]


@dataclass
class ModelRecord(_Record):
    """A tuned model or checkpoint this backend trained (weights stored apart)."""

    OBJECT: ClassVar[str] = "model"

    id: str
    created: int
    base: str = field(metadata=INTERNAL)
    job_id: str = field(metadata=INTERNAL)

    def _api_extras(self) -> dict[str, Any]:
        # The backend's own models never retire.
        return {"owned_by": "local", "shutdown_date": None}


#: A batch's phases whose start the API reports as ``<phase>_at``.
BATCH_PHASES: Final = (
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "cancelling",
    "cancelled",
)


@dataclass
class BatchRecord(_Record):
    """A batch over ``/v1/chat/completions``."""

    OBJECT: ClassVar[str] = "batch"

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
    # When each of BATCH_PHASES began (a phase not reached yet is absent).
    began: dict[str, int] = field(default_factory=dict, metadata=INTERNAL)
    # Request counts, and when the current phase began.
    total: int = field(default=0, metadata=INTERNAL)
    completed: int = field(default=0, metadata=INTERNAL)
    failed: int = field(default=0, metadata=INTERNAL)
    phase_start: float = field(default=0.0, metadata=INTERNAL)

    def enter(self, phase: str, at: float) -> None:
        """Move to ``phase`` (one of :data:`BATCH_PHASES`, also the status), begun at ``at``."""
        self.status = phase
        self.began[phase] = int(at)

    def _api_extras(self) -> dict[str, Any]:
        return {
            **{f"{phase}_at": self.began.get(phase) for phase in BATCH_PHASES},
            "expires_at": self.created_at + 86_400,
            "expired_at": None,
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
        }
