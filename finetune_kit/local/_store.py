"""The local backend's state: one object holding its parts (files, models, jobs, batches,
Azure deployments).

Each part keeps typed records (:mod:`._records`) and shares a :class:`~._state.State`: the
lock, the injected clock, the phase timings and persistence. Nothing runs in the
background: every request first calls :meth:`Store.advance`, which moves jobs and batches
to where the clock says they are (see :mod:`._jobs`).
"""

from __future__ import annotations

from ._arm import ArmDeployments
from ._batches import Batches
from ._files import Files
from ._jobs import Jobs
from ._models import Models
from ._state import State, Timing

__all__ = ["Store", "Timing"]


class Store:
    """All state of one local backend, its parts sharing ``state``; thread-safe."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.files = Files(self.state)
        self.models = Models(self.state)
        self.jobs = Jobs(self.state, self.files, self.models)
        self.batches = Batches(self.state, self.files, self.models)
        # Deployments live in memory only (a restarted server has none, like a fresh
        # resource): they are cheap to recreate, and AzureDeployments.deploy is idempotent.
        self.deployments = ArmDeployments(
            clock=self.state.now,
            model_exists=self.models.exists,
            provisioning_seconds=self.state.timing.deployment_provisioning,
        )

    def now(self) -> float:
        """The injected clock's time."""
        return self.state.now()

    def advance(self) -> None:
        """Move every unfinished job and batch to where the clock says it is now."""
        self.jobs.advance()
        self.batches.advance()

    def close(self) -> None:
        """Release the database."""
        self.state.close()
