"""Waiting for a job: polling with backoff, new events only, a progress bar, the outcome.

:func:`wait_flow` is a flow like the others (see :mod:`._flows`). Its timeout is measured on
the injected clock (the retry policy's ``clock``), never summed from the sleeps it asked for:
polls, retries and a slow network all count, and tests move time by hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from .._core.client import Sleep
from .._core.progress import progress_bar
from .._exceptions import JobTimeoutError
from ._flows import new_events
from ._models import _number, merge_events
from ._raw import TERMINAL_STATUSES, _outcome_error, _status
from ._requests import retrieve

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from openai.types.fine_tuning import FineTuningJob
    from tqdm import tqdm as Tqdm

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ._models import Event

__all__ = ["wait_flow", "watch"]

logger = logging.getLogger("finetune_kit")

_MAX_POLL_INTERVAL: Final = 60.0


class _Watch:
    """What ``wait()`` remembers between polls: seen events, backoff, the progress bar."""

    def __init__(
        self,
        job: FineTuningJob,
        *,
        progress: bool,
        on_event: Callable[[Event], object] | None,
        poll_interval: float,
        wall: Callable[[], float],
    ) -> None:
        self.job_id = job.id
        self.seen: set[str] = set()
        self.cursor: str | None = None
        self.on_event = on_event
        self.poll_interval = poll_interval
        self.delay = poll_interval
        self.wall = wall
        self.status: str | None = None  # so the first poll counts as a change
        self.bar: Tqdm[Any] | None = None
        if progress:
            self.bar = progress_bar(
                total=None, enabled=True, description=f"{job.id} {_status(job)}", unit="step"
            )

    def take(self, job: FineTuningJob, newest_first: Sequence[Event]) -> list[Event]:
        """Record a poll; return the new events in time order (``on_event`` already called)."""
        fresh = merge_events([], [e for e in newest_first if e.id not in self.seen])
        self.seen.update(e.id for e in fresh)
        if newest_first:
            self.cursor = newest_first[0].id
        changed = bool(fresh) or _status(job) != self.status
        self.status = _status(job)
        self.delay = (
            self.poll_interval
            if changed
            else min(self.delay * 1.5, max(_MAX_POLL_INTERVAL, self.poll_interval))
        )
        for event in fresh:
            logger.debug("job %s: %s", self.job_id, event.message)
            if self.on_event is not None:
                self.on_event(event)
        self._show(job, fresh)
        return fresh

    def _show(self, job: FineTuningJob, fresh: Sequence[Event]) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.set_description(f"{job.id} {self.status}", refresh=False)
        metrics = [e.data for e in fresh if e.type == "metrics" and e.data]
        parts: list[str] = []
        if metrics:
            last = metrics[-1]
            total = _number(last.get("total_steps"))
            step = _number(last.get("step"))
            if total is not None:
                bar.total = int(total)
            if step is not None:
                bar.n = int(step)
            loss = _number(last.get("train_loss"))
            if loss is not None:
                parts.append(f"loss {loss:.4f}")
        finish = job.estimated_finish
        if finish:
            left = max(0, int(finish - self.wall()))
            parts.append(f"ETA {left // 60}m{left % 60:02d}s")
        if parts:
            bar.set_postfix_str(", ".join(parts), refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def wait_flow(
    job: FineTuningJob,
    *,
    timeout: float | None,
    poll_interval: float,
    progress: bool,
    on_event: Callable[[Event], object] | None,
    on_update: Callable[[FineTuningJob], None],
    clock: Callable[[], float],
    wall: Callable[[], float],
) -> Flow[FineTuningJob]:
    """Poll until the job finishes; returns it on success, raises otherwise."""
    # The arguments were checked at the call (``check_wait``).
    started = clock()
    watch = _Watch(
        job, progress=progress, on_event=on_event, poll_interval=poll_interval, wall=wall
    )
    try:
        while True:
            job = yield retrieve(job.id)
            on_update(job)
            newest_first = yield from new_events(job.id, watch.cursor)
            watch.take(job, newest_first)
            if _status(job) in TERMINAL_STATUSES:
                error = _outcome_error(job)
                if error is not None:
                    raise error
                return job
            delay = watch.delay
            if timeout is not None:
                left = timeout - (clock() - started)
                if left <= 0:
                    raise JobTimeoutError(
                        f"job {job.id} is still {_status(job)} after {timeout:g}s; it keeps "
                        f"running: resume with Job.get({job.id!r}).wait()",
                        job_id=job.id,
                    )
                delay = min(delay, left)
            yield Sleep(delay)
    except (KeyboardInterrupt, asyncio.CancelledError):
        logger.warning(
            "stopped watching job %s (the job keeps running); resume with Job.get(%r).wait()",
            job.id,
            job.id,
        )
        raise
    finally:
        watch.close()


def watch(
    job: FineTuningJob,
    retry: RetryPolicy | None,
    on_update: Callable[[FineTuningJob], None],
    *,
    timeout: float | None,
    poll_interval: float,
    progress: bool,
    on_event: Callable[[Event], object] | None,
) -> Flow[FineTuningJob]:
    """:func:`wait_flow` on the retry policy's clock (``time.monotonic`` without one)."""
    clock = retry.clock if retry is not None else None
    return wait_flow(
        job,
        timeout=timeout,
        poll_interval=poll_interval,
        progress=progress,
        on_event=on_event,
        on_update=on_update,
        clock=clock or time.monotonic,
        wall=time.time,
    )
