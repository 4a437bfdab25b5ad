"""The jobs capability's face inside the package: import Job, AsyncJob and friends from here.

The code lives in modules of one concern each, from the bottom: ``_models`` (what a job
reports), ``_metrics`` (result files and the summary), ``_raw`` (reading the SDK's job),
``_options`` (``JobOptions`` and the argument checks), ``_idempotency`` (exactly-once create),
``_requests`` and ``_flows`` (the operations as sans-I/O flows), ``_watch`` (waiting), and the
two shells ``_sync`` (``Job``) and ``_async`` (``AsyncJob``).
"""

from __future__ import annotations

from ._async import AsyncJob
from ._idempotency import IDEMPOTENCY_METADATA_KEY, idempotency_key
from ._lifecycle import retirement_warning
from ._metrics import metrics_from_events, parse_metrics_csv, summarize_metrics
from ._models import Checkpoint, Event, MetricsRow, MetricsSummary, merge_events
from ._options import JobOptions
from ._raw import TERMINAL_STATUSES
from ._sync import Job

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "TERMINAL_STATUSES",
    "AsyncJob",
    "Checkpoint",
    "Event",
    "Job",
    "JobOptions",
    "MetricsRow",
    "MetricsSummary",
    "idempotency_key",
    "merge_events",
    "metrics_from_events",
    "parse_metrics_csv",
    "retirement_warning",
    "summarize_metrics",
]
