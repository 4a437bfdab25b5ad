"""Setting "today" in tests: the library reads it from the default session's clock only."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import TYPE_CHECKING

from finetune_kit import default_session, set_default_session

if TYPE_CHECKING:
    from collections.abc import Iterator


class DateClock:
    """The system clock moved so that today (UTC) is ``day``; waits are real ones.

    Only the wall time moves: code that waits or measures durations behaves as on the system
    clock, so a test can pin the date without changing anything else.
    """

    def __init__(self, day: dt.date) -> None:
        start = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc)
        self._offset = start.timestamp() - time.time()

    def __call__(self) -> float:
        return time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


@contextlib.contextmanager
def today_is(day: dt.date) -> Iterator[None]:
    """Within the block, the default session's clock says ``day`` is today."""
    previous = set_default_session(default_session().with_options(clock=DateClock(day)))
    try:
        yield
    finally:
        set_default_session(previous)
