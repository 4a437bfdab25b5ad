"""finetune_kit: dependable fine-tuning of chat models over the official openai SDK.

Everything public is re-exported here; the modules behind it are private.
"""

# No `from __future__ import annotations` here: it would leak an `annotations` attribute into
# the public namespace, and this module only re-exports.
from ._core.retry import RetryPolicy
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
from ._version import __version__
from .classification._batch import aclassify_batch, classify_batch
from .classification._capabilities import Capabilities, capabilities
from .classification._classify import (
    Classification,
    ClassifyOptions,
    TokenUsage,
    aclassify,
    aclassify_many,
    classify,
    classify_many,
    finished_results,
    warm_up,
)
from .datasets._dataset import Dataset
from .datasets._reports import CostEstimate, DatasetStats, Distribution, Problem, ValidationReport
from .evaluate import Evaluation, LabelMetrics, compare
from .facts._tokens import FinetuneKitWarning
from .jobs._job import AsyncJob, Checkpoint, Event, Job, MetricsRow, MetricsSummary
from .models._task import ClassificationTask
from .models._tuned_model import AsyncTunedModel, TunedModel

__all__ = [
    "AsyncJob",
    "AsyncTunedModel",
    "Capabilities",
    "Checkpoint",
    "Classification",
    "ClassificationError",
    "ClassificationTask",
    "ClassifyOptions",
    "CostEstimate",
    "Dataset",
    "DatasetError",
    "DatasetStats",
    "DatasetValidationError",
    "Distribution",
    "Evaluation",
    "Event",
    "FineTuningUnavailableError",
    "FinetuneKitError",
    "FinetuneKitWarning",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "LabelMetrics",
    "MetricsRow",
    "MetricsSummary",
    "Problem",
    "RetryPolicy",
    "TokenUsage",
    "TokenizerError",
    "TunedModel",
    "ValidationReport",
    "__version__",
    "aclassify",
    "aclassify_batch",
    "aclassify_many",
    "capabilities",
    "classify",
    "classify_batch",
    "classify_many",
    "compare",
    "finished_results",
    "warm_up",
]
