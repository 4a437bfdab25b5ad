"""What a fine-tuning job reports, read by the SDK and the local backend alike.

Source: the OpenAI API reference (/work/shared/openapi, ``FineTuningJobCheckpoint.metrics``):
a checkpoint's metrics are ``step`` and the names in :data:`STEP_METRICS`; a ``metrics``
event's ``data`` carries the same names (and ``total_steps``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["STEP_METRICS"]

#: The metrics of one training step, in the API's order (``step`` aside): the minibatch's
#: loss and mean token accuracy, the same on a validation minibatch, and on the whole
#: validation file (usually only at the end of each epoch).
STEP_METRICS: Final = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
