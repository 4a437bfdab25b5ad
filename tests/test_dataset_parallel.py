"""Checking in worker processes next to other threads; Dataset methods from any thread."""

from __future__ import annotations

import io
import json
import logging
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Dataset
from finetune_kit.datasets import _dataset, _parallel
from finetune_kit.datasets._checker import CheckConfig, check_range
from finetune_kit.datasets._source import byte_ranges

from .test_dataset import chat

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file of 2,000 examples with a few problems, checked in ranges of 16 KB."""
    monkeypatch.setattr("finetune_kit.datasets._source.CHUNK_BYTES", 16 * 1024)
    rows: list[Any] = [chat(i, words=i % 30) for i in range(2_000)]
    rows[5] = {"messages": [{"role": "user", "content": "no answer"}]}
    rows[1_900] = rows[3]  # a duplicate across ranges: hashes from different workers compare
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def idle_thread() -> Iterator[threading.Thread]:
    """Another thread running, as in every Jupyter kernel and threaded web server."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait, daemon=True)
    thread.start()
    yield thread
    done.set()
    thread.join()


def test_workers_check_while_other_threads_run(
    data: Path, idle_thread: threading.Thread, caplog: pytest.LogCaptureFixture
) -> None:
    assert idle_thread.is_alive()
    with caplog.at_level(logging.DEBUG, logger="finetune_kit"):
        parallel = Dataset.from_jsonl(data)
        report, stats = parallel.validate(workers=2), parallel.stats(workers=2)
    assert "with 2 worker processes" in caplog.text
    assert "failed" not in caplog.text
    serial = Dataset.from_jsonl(data)
    assert (report, stats) == (serial.validate(workers=1), serial.stats(workers=1))
    assert [(p.line, p.code) for p in report.problems] == [
        (None, "missing_system"),
        (6, "missing_assistant"),
        (1901, "duplicate_example"),
    ]


def test_workers_do_not_rerun_the_callers_script(data: Path, tmp_path: Path) -> None:
    """An unguarded script (no ``if __name__ == "__main__"``) runs once, workers or not."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import finetune_kit.datasets._source as s\n"
        "s.CHUNK_BYTES = 16 * 1024\n"
        "from finetune_kit import Dataset\n"
        f"stats = Dataset.from_jsonl({str(data)!r}).stats(workers=2)\n"
        "print('ran', stats.total_tokens)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = Dataset.from_jsonl(data).stats(workers=1).total_tokens
    assert done.stdout.splitlines() == [f"ran {expected}"]


def test_a_failing_worker_falls_back_to_one_process(
    data: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _parallel.shutdown_workers()  # workers kept from earlier checks would do the job
    monkeypatch.setattr(_parallel, "_BOOT", "import sys; sys.exit(3)")
    with caplog.at_level(logging.WARNING, logger="finetune_kit"):
        report = Dataset.from_jsonl(data).validate(workers=2)
    assert "checking in worker processes failed" in caplog.text
    assert report == Dataset.from_jsonl(data).validate(workers=1)


def test_workers_are_kept_for_the_next_check_and_stopped_when_idle(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parallel.shutdown_workers()
    started: list[object] = []
    start = _parallel._start

    def counted(env: dict[str, str]) -> Any:
        started.append(env["PYTHONHASHSEED"])
        return start(env)

    monkeypatch.setattr(_parallel, "_start", counted)
    first = Dataset.from_jsonl(data).validate(workers=2)
    second = Dataset.from_jsonl(data).validate(model="gpt-3.5-turbo", workers=2)
    assert len(started) == 2  # the second check reused both workers
    assert len(set(started)) == 1  # with one hash seed: their line hashes compare
    assert first.counts == second.counts
    monkeypatch.setattr(_parallel, "_IDLE_SECONDS", 0.0)
    _parallel._pool._close_if_idle()
    Dataset.from_jsonl(data).validate(model="gpt-4o", workers=2)
    assert len(started) == 4  # stopped when idle, started again when needed
    _parallel.shutdown_workers()


def test_methods_run_in_other_threads_at_once(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset built here is used from worker threads, concurrently; one pass is shared."""
    ds = Dataset.from_jsonl(data)
    passes: list[int] = []
    check_file = _parallel.check_file

    def counted(*args: Any) -> Any:
        passes.append(1)
        return check_file(*args)

    monkeypatch.setattr(_dataset, "check_file", counted)
    start = threading.Barrier(6)

    def work(i: int) -> object:
        start.wait()
        what = i % 3
        if what == 0:
            return ds.validate(workers=1)
        if what == 1:
            return ds.stats(workers=1)
        return ds.content_hash()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(6)))
    assert len(passes) == 1  # six threads, one pass over the file for the analysis
    fresh = Dataset.from_jsonl(data)
    assert results[0] == results[3] == fresh.validate(workers=1)
    assert results[1] == results[4] == fresh.stats(workers=1)
    assert results[2] == results[5] == fresh.content_hash()


def test_the_worker_loop_answers_each_task_in_order(data: Path) -> None:
    """What a worker runs, here in process: a tally per range, an error as an answer."""
    config = CheckConfig(kind="chat", encoding="o200k_base", training_context=65_536)
    ranges = byte_ranges(data)[:2]
    tasks = io.BytesIO()
    for start, end in ranges:
        pickle.dump((config, str(data), start, end), tasks)
    pickle.dump((config, str(data.with_name("missing.jsonl")), 0, 10), tasks)
    tasks.seek(0)
    answers = io.BytesIO()
    _parallel.serve(tasks, answers)  # returns at the end of the input
    answers.seek(0)
    replies = [pickle.load(answers) for _ in range(3)]
    assert [status for status, _ in replies] == ["ok", "ok", "error"]
    assert [reply for _, reply in replies[:2]] == [
        check_range(config, str(data), *r) for r in ranges
    ]
    assert "FileNotFoundError" in replies[2][1]
    assert answers.read() == b""
