"""The local backend: an OpenAI-compatible fine-tuning service on this machine.

``LocalServer`` serves it with uvicorn in a background thread (or, with
``in_process=True``, with no socket at all) for tests, demos and trying pipelines without a
key or a bill; ``finetune-kit serve`` runs it as a process. ``LocalServer.app`` is the ASGI
app itself; :func:`in_process_http_client` / :func:`in_process_async_http_client` let an
unmodified ``openai`` client talk to it in process. ``Faults``/``FaultRule`` inject errors,
dropped connections and delays on demand; ``ManualClock`` makes time stand still until a
test moves it. The same server answers Azure's control plane for deployments at its root
(:attr:`LocalServer.management_url`; ``StaticToken`` is a credential for it). Jobs train
with a :class:`Trainer`: the built-in :class:`LinearTrainer`, or yours via
``LocalServer(trainer=...)``. See docs/local-backend.md.
"""

from __future__ import annotations

from ._clock import ManualClock
from ._faults import FaultKind, FaultRule, Faults
from ._server import LocalServer
from ._token import AsyncStaticToken, StaticToken
from ._trainer import LinearTrainer
from ._trainer_types import (
    AnswerModel,
    Hyperparameters,
    StepMetrics,
    Trainer,
    TrainingExample,
    TrainingRun,
    TrainOptions,
)
from ._transport import in_process_async_http_client, in_process_http_client

__all__ = [
    "AnswerModel",
    "AsyncStaticToken",
    "FaultKind",
    "FaultRule",
    "Faults",
    "Hyperparameters",
    "LinearTrainer",
    "LocalServer",
    "ManualClock",
    "StaticToken",
    "StepMetrics",
    "TrainOptions",
    "Trainer",
    "TrainingExample",
    "TrainingRun",
    "in_process_async_http_client",
    "in_process_http_client",
]
