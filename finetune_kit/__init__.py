"""finetune_kit: dependable fine-tuning of chat models over the official openai SDK.

Everything public is re-exported here; the modules behind it are private.
"""

from __future__ import annotations

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
from ._retry import RetryPolicy
from ._tokens import FinetuneKitWarning
from ._version import __version__

__all__ = [
    "ClassificationError",
    "DatasetError",
    "DatasetValidationError",
    "FineTuningUnavailableError",
    "FinetuneKitError",
    "FinetuneKitWarning",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "RetryPolicy",
    "TokenizerError",
    "__version__",
]
