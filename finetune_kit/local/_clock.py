"""``ManualClock``: time that moves only when told to, for fast and exact tests."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """A clock for :class:`LocalServer` that stands still until advanced.

    Pass it as ``LocalServer(clock=clock)``; jobs and batches then move only when the test
    calls :meth:`advance`. Its :meth:`sleep` / :meth:`asleep` advance the clock instead of
    waiting, so they can be injected wherever code under test sleeps while polling (a job
    waiter, a retry loop): each "sleep" moves the server forward by exactly that much.

    Args:
        start: The initial time, in seconds since the epoch.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ManualClock({self():.3f})"

    def __call__(self) -> float:
        """The current time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards ({seconds} s)")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """A stand-in for ``time.sleep``: advances the clock, returns at once."""
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        """A stand-in for ``asyncio.sleep``: advances the clock, returns at once."""
        self.advance(max(0.0, seconds))
