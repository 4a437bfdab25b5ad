"""Fixtures for the local backend's tests (and, moved to tests/conftest.py, for everyone's).

``local_server`` is a started :class:`~finetune_kit.local.LocalServer` on 127.0.0.1 running
100x faster than real time, so a small fine-tuning job finishes in well under a second with the
real clock. ``clocked_server`` runs on a :class:`FakeClock` instead: nothing moves until the
test calls ``clock.advance(seconds)``, which makes lifecycle tests exact and instant.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from finetune_kit.local import LocalServer

if TYPE_CHECKING:
    from collections.abc import Iterator


class FakeClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += seconds


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A running local backend (in memory, 100x speed, real clock)."""
    with LocalServer(speed=100.0) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock for ``clocked_server``."""
    return FakeClock()


@pytest.fixture
def clocked_server(clock: FakeClock) -> Iterator[LocalServer]:
    """A running local backend whose time is ``clock`` (default pace: jobs take seconds)."""
    with LocalServer(clock=clock) as server:
        yield server
