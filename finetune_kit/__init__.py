"""finetune_kit: dependable fine-tuning of chat models over the official openai SDK.

Everything public is re-exported here; the modules behind it are private.
"""

from __future__ import annotations

from ._dataset import Dataset
from ._exceptions import (
    ClassificationError,
    DatasetError,
    DatasetValidationError,
    FinetuneKitError,
    FineTuningUnavailableError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    TokenizerError,
)
from ._job import AsyncJob, Checkpoint, Event, Job, MetricsRow, MetricsSummary
from ._retry import RetryPolicy
from ._tokens import FinetuneKitWarning
from ._types import CostEstimate, DatasetStats, Distribution, Problem, ValidationReport
from ._version import __version__

__all__ = [
    "AsyncJob",
    "Checkpoint",
    "ClassificationError",
    "CostEstimate",
    "Dataset",
    "DatasetError",
    "DatasetStats",
    "DatasetValidationError",
    "Distribution",
    "Event",
    "FineTuningUnavailableError",
    "FinetuneKitError",
    "FinetuneKitWarning",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "MetricsRow",
    "MetricsSummary",
    "Problem",
    "RetryPolicy",
    "TokenizerError",
    "ValidationReport",
    "__version__",
]
