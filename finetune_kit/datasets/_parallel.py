"""Checking a large file on every core, in worker processes that are safe with threads.

Tokenizing is the bulk of validation and one core cannot keep up with the file, so a large
file is cut into ranges of whole lines (``_source.byte_ranges``) and each range is checked by
a worker process (``_checker.check_range``); the small tallies come back and are merged in
line order, so the result is exactly the serial one.

The workers are fresh interpreters started with :mod:`subprocess` (``sys.executable -c``),
not :mod:`multiprocessing` children:

- ``fork`` copies a process whose other threads may hold locks (every Jupyter kernel and
  threaded web server has such threads), so it is unsafe as soon as a second thread runs;
- ``spawn`` and ``forkserver`` re-import the caller's ``__main__`` in every worker, which
  re-runs an unguarded user script (and its validation) in each of them.

Starting our own interpreter (``fork`` + ``exec`` at once, which is safe with threads) avoids
both. What a worker needs is passed explicitly: the parent's ``sys.path`` (first message on
its stdin), one shared ``PYTHONHASHSEED`` (duplicate detection compares line hashes made by
different workers), and then one task per message; each answer is one pickled tally on its
stdout (anything a library prints there is sent to stderr instead). The pipes carry a few
numbers per range out and a small tally back, never the data: each worker reads its own
ranges of the file.

Starting a worker costs about a second (an interpreter, then the tokenizer's tables), so the
workers are kept in a pool for the next check and stopped after two idle minutes, at exit, or
when this process dies (their stdin closes). A thread that finds the pool busy starts a set of
its own for its check.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import queue
import random
import subprocess
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Final

from .._exceptions import DatasetError
from ._checker import CheckConfig, Tally, check_range
from ._source import byte_ranges

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = [
    "PARALLEL_MIN_BYTES",
    "check_file",
    "check_ranges_in_workers",
    "plan_workers",
    "serve",
    "shutdown_workers",
]

logger = logging.getLogger("finetune_kit")

# The worker's first lines run before anything of ours is importable: read sys.path, keep the
# real stdout for answers and point fd 1 at stderr. Then the package is registered without
# running its __init__ (the public face imports the openai SDK, a second or more per worker;
# a worker needs the checker alone), and the worker serves.
_BOOT: Final = (
    "import importlib.util, os, pickle, sys\n"
    "sys.path[:] = pickle.load(sys.stdin.buffer)\n"
    "out = os.fdopen(os.dup(1), 'wb')\n"
    "os.dup2(2, 1)\n"
    "spec = importlib.util.find_spec('finetune_kit')\n"
    "sys.modules['finetune_kit'] = importlib.util.module_from_spec(spec)\n"
    "from finetune_kit.datasets._parallel import serve\n"
    "serve(sys.stdin.buffer, out)\n"
    "os._exit(0)\n"  # nothing to clean up: skip the interpreter's slow teardown
)
_STOP_TIMEOUT: Final = 5.0
#: Idle workers are stopped after this many seconds without work.
_IDLE_SECONDS: Final = 120.0
#: Files at least this large are checked by several processes when ``workers`` is not given.
PARALLEL_MIN_BYTES: Final = 8 << 20

Task = tuple[CheckConfig, str, int, int]


def serve(tasks: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: check each range sent until the parent closes the pipe."""
    while True:
        try:
            task: Task = pickle.load(tasks)
        except EOFError:
            return
        try:
            reply: tuple[str, object] = ("ok", check_range(*task))
        except Exception as exc:  # reported to the parent, which falls back to one process
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


class _WorkerFailed(Exception):
    """A worker died or answered nonsense: the check runs in the calling process instead."""


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _BOOT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    assert proc.stdin is not None
    pickle.dump(list(sys.path), proc.stdin)
    proc.stdin.flush()
    return proc


def _drive(
    proc: subprocess.Popen[bytes],
    tasks: Iterator[tuple[int, Task]],
    lock: threading.Lock,
    stop: threading.Event,
    results: queue.Queue[tuple[int, Tally] | BaseException | None],
) -> None:
    """Feed one worker tasks until none remain; answers go to ``results`` (then None)."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        while not stop.is_set():
            with lock:
                item = next(tasks, None)
            if item is None:
                return
            index, task = item
            pickle.dump(task, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
            status, value = pickle.load(proc.stdout)
            if status != "ok" or not isinstance(value, Tally):
                raise _WorkerFailed(str(value))
            results.put((index, value))
    except Exception as exc:  # a dead worker, a closed pipe: the parent decides what to do
        results.put(exc)
    finally:
        results.put(None)


def _stop(procs: list[subprocess.Popen[bytes]], *, kill: bool) -> None:
    for proc in procs:
        if kill:
            proc.kill()  # our own child, by its handle
        with contextlib.suppress(OSError):  # already gone
            if proc.stdin is not None:
                proc.stdin.close()  # the worker's loop ends at end of input
    for proc in procs:
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class _Pool:
    """Worker processes kept between checks: starting one costs about a second.

    Idle workers wait on their stdin and exit when it closes: after :data:`_IDLE_SECONDS`
    without work, at interpreter exit, or when this process dies. Holders of :attr:`lock` own
    the workers; a worker that failed, or was interrupted mid-task, takes the whole set with it.
    """

    def __init__(self, *, keep: bool) -> None:
        self.lock = threading.Lock()
        self._keep = keep
        self._procs: list[subprocess.Popen[bytes]] = []
        self._env: dict[str, str] | None = None
        self._pid = os.getpid()
        self._used = 0.0
        self._timer: threading.Timer | None = None

    def take(self, n: int) -> list[subprocess.Popen[bytes]]:
        """``n`` live workers (started as needed); call with :attr:`lock` held."""
        if self._pid != os.getpid():  # a forked copy of the pool: the workers are not ours
            self._procs, self._env, self._pid = [], None, os.getpid()
        self._procs = [proc for proc in self._procs if proc.poll() is None]
        if self._env is None:
            # One hash seed for every worker of the pool, so their line hashes compare.
            self._env = dict(os.environ, PYTHONHASHSEED=str(random.randrange(1, 2**32)))
        while len(self._procs) < n:
            self._procs.append(_start(self._env))
        return self._procs[:n]

    def kill(self) -> None:
        """Kill every worker now (lock held): threads reading from them see end of file."""
        for proc in self._procs:
            proc.kill()  # our own child, by its handle

    def release(self, *, ok: bool) -> None:
        """After a check (lock held): keep the workers for the next one, or stop them."""
        if not (ok and self._keep):
            self.shutdown(kill=not ok)
            return
        self._used = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(_IDLE_SECONDS, self._close_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def shutdown(self, *, kill: bool = False) -> None:
        """Stop every worker (lock held, or at exit)."""
        procs, self._procs = self._procs, []
        if self._pid == os.getpid():
            _stop(procs, kill=kill)

    def _close_if_idle(self) -> None:
        if self.lock.acquire(blocking=False):
            try:
                if time.monotonic() - self._used >= _IDLE_SECONDS:
                    self.shutdown()
            finally:
                self.lock.release()


_pool = _Pool(keep=True)
atexit.register(_pool.shutdown)


def shutdown_workers() -> None:
    """Stop the idle worker processes now (they are started again when needed)."""
    with _pool.lock:
        _pool.shutdown()


def check_ranges_in_workers(
    config: CheckConfig, path: str, ranges: Sequence[tuple[int, int]], workers: int
) -> Tally | None:
    """Check ``ranges`` of ``path`` in ``workers`` processes; the merged tally, in line order.

    Safe to call from any thread, and while other threads run. Returns None when the workers
    could not do the job (no interpreter to start, a worker died): the caller then checks in
    its own process, which gives the same result.
    """
    if not sys.executable:
        return None
    # The shared workers, unless another thread is using them: then a set of our own.
    pool = _pool if _pool.lock.acquire(blocking=False) else _Pool(keep=False)
    if pool is not _pool:
        pool.lock.acquire()
    try:
        return _run(pool, config, path, ranges, workers)
    finally:
        pool.lock.release()


def _run(
    pool: _Pool,
    config: CheckConfig,
    path: str,
    ranges: Sequence[tuple[int, int]],
    workers: int,
) -> Tally | None:
    keep = config.max_per_code
    tasks = iter(enumerate((config, path, start, end) for start, end in ranges))
    lock, stop = threading.Lock(), threading.Event()
    results: queue.Queue[tuple[int, Tally] | BaseException | None] = queue.Queue()
    threads: list[threading.Thread] = []
    total = Tally()
    ok = False
    try:
        for proc in pool.take(min(workers, len(ranges))):
            thread = threading.Thread(
                target=_drive, args=(proc, tasks, lock, stop, results), daemon=True
            )
            thread.start()
            threads.append(thread)
        # Merge in line order as answers arrive; only ranges finished early wait here.
        pending: dict[int, Tally] = {}
        merged, running = 0, len(threads)
        while running:
            item = results.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise _WorkerFailed(f"{type(item).__name__}: {item}") from item
            else:
                pending[item[0]] = item[1]
                while merged in pending:
                    total.merge(pending.pop(merged), keep)
                    merged += 1
        if merged != len(ranges):
            raise _WorkerFailed(f"{len(ranges) - merged} range(s) were not checked")
        ok = True
    except (OSError, _WorkerFailed) as exc:
        logger.warning("checking in worker processes failed (%s); checking in this one", exc)
        return None
    finally:
        stop.set()
        if not ok:
            pool.kill()  # unblocks the threads waiting for an answer
        for thread in threads:
            thread.join()
        pool.release(ok=ok)
    return total


def plan_workers(workers: int | None, size: int) -> int:
    """How many processes check a file of ``size`` bytes: every core for a large one.

    Raises:
        ValueError: ``workers`` is below 1.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers is not None:
        return workers
    if size < PARALLEL_MIN_BYTES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def check_file(config: CheckConfig, path: Path, workers: int) -> Tally:
    """Check the whole file in ``workers`` processes (1: in this one), merged in line order.

    Raises:
        DatasetError: the file cannot be read.
    """
    try:
        ranges = byte_ranges(path)
        if workers > 1 and len(ranges) > 1:
            logger.debug("checking %s with %d worker processes", path, workers)
            total = check_ranges_in_workers(config, str(path), ranges, workers)
            if total is not None:
                return total
        total = Tally()
        for start, end in ranges:
            total.merge(check_range(config, str(path), start, end), config.max_per_code)
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc
    return total
