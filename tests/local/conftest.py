"""Fixtures for the local backend's tests (and, moved to tests/conftest.py, for everyone's).

``local_server`` is a started :class:`~finetune_kit.local.LocalServer` on 127.0.0.1 running
100x faster than real time, so a small fine-tuning job finishes in well under a second with the
real clock. ``clocked_server`` runs on the ``clock`` fixture, a
:class:`~finetune_kit.local.ManualClock`: nothing moves until the test calls
``clock.advance(seconds)``, or code under test calls ``clock.sleep`` / ``clock.asleep`` where
it would sleep (inject them as the ``sleep=`` of a poller), which makes lifecycles exact and
instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from finetune_kit.local import LocalServer, ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A running local backend (in memory, 100x speed, real clock)."""
    with LocalServer(speed=100.0) as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    """A clock that stands still until ``clock.advance(seconds)`` (or ``clock.sleep``)."""
    return ManualClock()


@pytest.fixture
def clocked_server(clock: ManualClock) -> Iterator[LocalServer]:
    """A running local backend whose time is ``clock`` (default pace: jobs take seconds)."""
    with LocalServer(clock=clock) as server:
        yield server
