"""The local backend: an OpenAI-compatible fine-tuning service on this machine.

``LocalServer`` runs it in a background thread for tests, demos and trying pipelines without
a key or a bill; ``finetune-kit serve`` runs it as a process. ``Faults``/``FaultRule`` inject
errors, dropped connections and delays on demand; ``ManualClock`` makes time stand still
until a test moves it. See docs/local-backend.md.
"""

from __future__ import annotations

from ._clock import ManualClock
from ._faults import FaultKind, FaultRule, Faults
from ._server import LocalServer

__all__ = ["FaultKind", "FaultRule", "Faults", "LocalServer", "ManualClock"]
