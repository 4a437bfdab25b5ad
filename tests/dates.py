"""Setting "today" in tests: the library reads it from the default session's clock only."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import TYPE_CHECKING

from finetune_kit import default_session, set_default_session

if TYPE_CHECKING:
    from collections.abc import Iterator


class DateClock:
    """The system clock moved so that today (UTC) is ``day``; waits are never real.

    Time runs as on the system clock (code that measures durations behaves as usual), and a
    sleep moves this clock forward at once instead of waiting, so a test that pins the date
    cannot slow the suite down or race the wall clock.
    """

    def __init__(self, day: dt.date) -> None:
        start = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc)
        self._offset = start.timestamp() - time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._offset += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still a turn of the loop, as a real sleep would give


@contextlib.contextmanager
def today_is(day: dt.date) -> Iterator[None]:
    """Within the block, the default session's clock says ``day`` is today."""
    previous = set_default_session(default_session().with_options(clock=DateClock(day)))
    try:
        yield
    finally:
        set_default_session(previous)
