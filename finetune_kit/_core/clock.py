"""Time, read in one injectable place: the :class:`Clock` a session carries.

Everything in finetune_kit that needs the time - a wait between polls, a retry backoff, the
UNIX time a ``Retry-After`` date is measured against, "today" for retirement warnings - asks
a clock rather than :mod:`time` or :mod:`datetime`. The default is :data:`SYSTEM_CLOCK`; tests
and apps inject another one through :class:`~finetune_kit.Session` (``clock=``), so nothing in
the library changes behaviour because the calendar passed a date in the catalogue.

The protocol is what :class:`finetune_kit.local.ManualClock` already offers, so one manual
clock can drive both the local backend and the library.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "elapsed_timer", "utc_today"]


@runtime_checkable
class Clock(Protocol):
    """Where finetune_kit reads the time and waits.

    Implement it to control time (tests, simulations); :class:`finetune_kit.local.ManualClock`
    fits it as it is. "Today" is the UTC date of ``clock()`` (see :func:`utc_today`).
    """

    def __call__(self) -> float:
        """The current wall time, in seconds since the UNIX epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a stand-in may advance itself and return at once)."""
        ...

    async def asleep(self, seconds: float) -> None:
        """The async sibling of :meth:`sleep`."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.sleep` and :func:`asyncio.sleep`."""

    def __repr__(self) -> str:
        return "SystemClock()"

    def __call__(self) -> float:
        """The current wall time, in seconds since the UNIX epoch."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Suspend for ``seconds``."""
        await asyncio.sleep(seconds)

    def today(self) -> dt.date:
        """Today's date in UTC."""
        return utc_today(self)


#: The clock used when none is given.
SYSTEM_CLOCK = SystemClock()


def utc_today(clock: Clock) -> dt.date:
    """The UTC date of ``clock``'s current time: the one definition of "today"."""
    return dt.datetime.fromtimestamp(clock(), tz=dt.timezone.utc).date()


def elapsed_timer(clock: Clock) -> Callable[[], float]:
    """A source of seconds for measuring durations on ``clock``.

    The system clock measures with :func:`time.monotonic`, which does not jump when the wall
    clock is set; any other clock is trusted to move only forwards and is used as it is.
    """
    return time.monotonic if isinstance(clock, SystemClock) else clock
