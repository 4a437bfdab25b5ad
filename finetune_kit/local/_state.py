"""What the store's parts share: the lock, the clock, timings, persistence, ids and paging.

The lock guards records only: every part holds it for bookkeeping and releases it before
slow work (training a model, running a batch), so the server keeps answering meanwhile.
"""

from __future__ import annotations

import secrets
import string
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._errors import bad_request, integer
from ._persist import Persistence

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    from ._trainer_types import AnswerModel, Trainer

__all__ = ["State", "Timing", "limit", "page", "rand"]

_ALPHABET = string.ascii_letters + string.digits

_R = TypeVar("_R")


def rand(n: int) -> str:
    """``n`` random letters and digits (the tail of every id)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


class _HasApi(Protocol):
    id: str

    def to_api(self) -> dict[str, Any]: ...


def page(items: Sequence[_HasApi], after: str | None, limit: int) -> dict[str, Any]:
    """A cursor page over ``items`` (already in listing order), after the id ``after``."""
    start = 0
    if after:
        for i, item in enumerate(items):
            if item.id == after:
                start = i + 1
                break
    chosen = [item.to_api() for item in items[start : start + limit]]
    return {
        "object": "list",
        "data": chosen,
        "has_more": start + limit < len(items),
        "first_id": chosen[0]["id"] if chosen else None,
        "last_id": chosen[-1]["id"] if chosen else None,
    }


def limit(value: Any, default: int, maximum: int) -> int:
    """The ``limit`` query parameter, checked (400 when not an integer in 1..maximum)."""
    if value is None:
        return default
    number = integer(value, f"Invalid 'limit': expected an integer, got {value!r}.", param="limit")
    if not 1 <= number <= maximum:
        raise bad_request(f"Invalid 'limit': must be between 1 and {maximum}.", param="limit")
    return number


@dataclass(frozen=True)
class Timing:
    """How long each phase lasts at ``speed=1`` (seconds); divided by the server's speed."""

    validating: float = 0.5
    queued: float = 0.5
    running_min: float = 1.5
    running_per_step: float = 0.002
    running_max: float = 20.0
    batch_validating: float = 0.3
    batch_in_progress: float = 0.7
    batch_finalizing: float = 0.2
    #: How long a new Azure deployment stays ``Creating`` (Azure takes minutes).
    deployment_provisioning: float = 1.0

    def scaled(self, speed: float) -> Timing:
        """These timings at ``speed`` (2.0 = twice as fast)."""
        return Timing(**{k: v / speed for k, v in self.__dict__.items()})


class State:
    """The lock, clock, timings, persistence and trainer one backend's parts share."""

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None,
        clock: Callable[[], float],
        timing: Timing,
        trainer: Trainer[AnswerModel],
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.timing = timing
        # Trains jobs (off the lock) and loads the models it saved back for answering.
        self.trainer = trainer
        self.db = Persistence(data_dir)
        self._pending: list[tuple[str, str, Any]] = []

    def now(self) -> float:
        """The injected clock's time."""
        return self.clock()

    def records(self, kind: str, rebuild: Callable[[Any], _R]) -> dict[str, _R]:
        """Every stored document of ``kind`` rebuilt (by a record's ``from_doc``), by id."""
        return {oid: rebuild(doc) for oid, doc in self.db.load(kind)}

    def stage(self, kind: str, oid: str, doc: Any) -> None:
        """Queue a document for the next :meth:`flush` (one transaction for many changes)."""
        self._pending.append((kind, oid, doc))

    def flush(self) -> None:
        """Write every staged document."""
        if self._pending:
            pending, self._pending = self._pending, []
            self.db.save_many(pending)

    def close(self) -> None:
        """Release the database."""
        with self.lock:
            self.db.close()
