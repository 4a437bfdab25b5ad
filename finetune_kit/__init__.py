"""finetune_kit: dependable fine-tuning of chat models over the official openai SDK.

Everything public is re-exported here; the modules behind it are private.
"""

# No `from __future__ import annotations` here: it would leak an `annotations` attribute into
# the public namespace, and this module only re-exports.
from ._core.clock import Clock
from ._core.retry import RetryPolicy
from ._core.session import Session, default_session, set_default_session
from ._exceptions import (
    ClassificationError,
    DatasetError,
    DatasetValidationError,
    DeploymentError,
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
from .datasets._reports import (
    CostEstimate,
    DatasetStats,
    Distribution,
    Histogram,
    Problem,
    ValidationReport,
)
from .evaluate import Comparison, Evaluation, LabelMetrics, compare
from .facts._models import FactsTable, ModelFacts, facts_table, model_facts
from .facts._tokens import FinetuneKitWarning
from .jobs._job import (
    AsyncJob,
    Checkpoint,
    Event,
    Job,
    JobOptions,
    MetricsRow,
    MetricsSummary,
)
from .jobs._spec import JobSpec
from .models._deployments import AsyncAzureDeployments, AzureDeployments, AzureResource, Deployment
from .models._hosting import HostingCost, estimate_hosting_cost
from .models._task import ClassificationTask
from .models._tuned_model import AsyncTunedModel, TunedModel

__all__ = [
    "AsyncAzureDeployments",
    "AsyncJob",
    "AsyncTunedModel",
    "AzureDeployments",
    "AzureResource",
    "Capabilities",
    "Checkpoint",
    "Classification",
    "ClassificationError",
    "ClassificationTask",
    "ClassifyOptions",
    "Clock",
    "Comparison",
    "CostEstimate",
    "Dataset",
    "DatasetError",
    "DatasetStats",
    "DatasetValidationError",
    "Deployment",
    "DeploymentError",
    "Distribution",
    "Evaluation",
    "Event",
    "FactsTable",
    "FineTuningUnavailableError",
    "FinetuneKitError",
    "FinetuneKitWarning",
    "Histogram",
    "HostingCost",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobOptions",
    "JobSpec",
    "JobTimeoutError",
    "LabelMetrics",
    "MetricsRow",
    "MetricsSummary",
    "ModelFacts",
    "Problem",
    "RetryPolicy",
    "Session",
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
    "default_session",
    "estimate_hosting_cost",
    "facts_table",
    "finished_results",
    "model_facts",
    "set_default_session",
    "warm_up",
]
