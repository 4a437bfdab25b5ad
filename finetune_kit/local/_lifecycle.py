"""What jobs and batches share: records that move with the clock, slow work off the lock.

Nothing runs in the background: each request first calls :meth:`Lifecycle.advance`, which
moves every unfinished record to where the clock says it is. A record whose slow work is due
(training a job, running a batch's requests) is *claimed* under the lock, worked on with the
lock released, so the server keeps answering meanwhile, then its outcome is recorded under
the lock again, unless the record changed status meanwhile (it was cancelled). The work is
told how to notice that change, so it can stop early rather than finish for nothing.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._files import Files
    from ._models import Models
    from ._state import State

__all__ = ["Lifecycle"]

logger = logging.getLogger("finetune_kit")


class _Moving(Protocol):
    id: str
    status: str


_R = TypeVar("_R", bound=_Moving)
_W = TypeVar("_W")
_O = TypeVar("_O")


class Lifecycle(ABC, Generic[_R, _W, _O]):
    """A store part over ``state``, ``files`` and ``models`` whose records move with the clock.

    Type parameters: the record, the slow work a record hands out when it is due, and that
    work's outcome. Subclasses say how a record moves (:meth:`_move`), how its work is done
    (:meth:`_work`), how the outcome is recorded (:meth:`_finish`) and how a record that hit
    a bug fails (:meth:`_break`).
    """

    #: The record kind, as the log names it.
    KIND: ClassVar[str]
    #: Statuses in which a record does not move.
    RESTING: ClassVar[tuple[str, ...]]

    def __init__(self, state: State, files: Files, models: Models) -> None:
        self.s = state
        self.files = files
        self.models = models
        self._claimed: set[str] = set()

    def advance(self) -> None:
        """Move every unfinished record to where the clock says it is now."""
        claimed: list[tuple[_R, str, _W, float]] = []
        with self.s.lock:
            now = self.s.now()
            for record in list(self._records()):
                if record.status in self.RESTING or record.id in self._claimed:
                    continue
                due = self._guarded(record, now)
                if due is not None:
                    self._claimed.add(record.id)
                    claimed.append((record, record.status, *due))
            self.s.flush()
        for record, status, work, at in claimed:
            outcome = self._work(record, work, functools.partial(_moved, record, status))
            with self.s.lock:
                self._claimed.discard(record.id)
                if record.status == status:  # not cancelled meanwhile
                    self._finish(record, outcome, at)
                    self._guarded(record, self.s.now())
                self.s.flush()

    def _guarded(self, record: _R, now: float) -> tuple[_W, float] | None:
        try:
            return self._move(record, now)
        except Exception:
            # A bug in one record must not make every later request fail.
            logger.exception("local backend: %s %s failed internally", self.KIND, record.id)
            self._break(record, now)
            return None

    @abstractmethod
    def _records(self) -> Iterable[_R]:
        """Every record of this part."""

    @abstractmethod
    def _move(self, record: _R, now: float) -> tuple[_W, float] | None:
        """Move ``record`` on to ``now`` (under the lock).

        Returns:
            The slow work now due and the time it is done at, or None.
        """

    @abstractmethod
    def _work(self, record: _R, work: _W, moved: Callable[[], bool]) -> _O:
        """Do ``record``'s slow work (off the lock: read nothing else of the record).

        ``moved()`` turns True once the record has left the status it was claimed in (it
        was cancelled): the work may stop then, and its outcome is thrown away.
        """

    @abstractmethod
    def _finish(self, record: _R, outcome: _O, at: float) -> None:
        """Record the work's outcome, done at ``at`` (under the lock)."""

    @abstractmethod
    def _break(self, record: _R, now: float) -> None:
        """Fail ``record`` after a bug while moving it (under the lock)."""


def _moved(record: _Moving, status: str) -> bool:
    # A plain attribute read, off the lock: a status changes whole, under the lock.
    return record.status != status
