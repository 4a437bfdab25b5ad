"""Does ``await AsyncJob.create(...)`` on a big file leave the event loop free for other tasks?

A heartbeat task on the same loop ticks every 5 ms; the longest gap between two ticks is how
long the loop was blocked. Measured in the same run:

1. baseline: the heartbeat on a bare event loop (what the machine itself adds);
2. finetune_kit: the heartbeat during ``await AsyncJob.create(Dataset.from_jsonl(path), ...)``
   on N chat examples (default 100,000), against the local backend (``finetune-kit serve``)
   in another process, as a real service would be. Measured twice: cold, the process's first
   create, which also loads the tokenizer's encoding (tiktoken builds it in one native call
   that holds the GIL, so no thread can run meanwhile: a one-time cost per process), and
   warm, a second create of another file of the same size;
3. for comparison, the warm create flow driven on the loop's own thread (``arun_flow``), as
   ``AsyncJob.create`` did before its Dataset work moved to a worker thread.

Target: the worst gap during the warm create under 100 ms. Prints each worst gap and the
ratio to the baseline.

    python benchmarks/async_create_heartbeat.py             # 100k examples
    python benchmarks/async_create_heartbeat.py --n 20000 --skip-on-loop
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import openai

from finetune_kit import AsyncJob, Dataset, FinetuneKitWarning, JobOptions
from finetune_kit._core.client import arun_flow
from finetune_kit.jobs import _flows

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

TICK = 0.005
MODEL = "gpt-4o-mini"
TOPICS = ("billing", "shipping", "returns", "account", "other")


def write_examples(path: Path, n: int, seed: int = 0) -> None:
    """N classification-style chat examples, one JSON object per line."""
    rng = random.Random(seed)
    words = [
        "order",
        "card",
        "refund",
        "parcel",
        "password",
        "late",
        "broken",
        "twice",
        "charge",
        "address",
    ]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
            example = {
                "messages": [
                    {"role": "system", "content": "Classify the support ticket."},
                    {"role": "user", "content": f"{text} (ticket {i})"},
                    {"role": "assistant", "content": rng.choice(TOPICS)},
                ]
            }
            out.write(json.dumps(example) + "\n")


async def worst_gap(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(worst gap between heartbeat ticks, seconds the work took) while ``work()`` runs."""
    done = asyncio.Event()
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(TICK * 4)  # the heartbeat is running before the work starts
    started = time.perf_counter()
    try:
        await work()
    finally:
        took = time.perf_counter() - started
        done.set()
        await beat
    return max(gaps), took


async def bare(seconds: float) -> None:
    await asyncio.sleep(seconds)


@contextmanager
def serve() -> Iterator[str]:
    """``finetune-kit serve`` in its own process; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "finetune_kit.cli._main", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-local", base_url=url)


async def create_off_loop(url: str, path: Path) -> None:
    async with client(url) as c:
        await AsyncJob.create(Dataset.from_jsonl(path), model=MODEL, client=c)


async def create_on_loop(url: str, path: Path) -> None:
    # The same plan and flow, but every step on the loop's thread (the old AsyncJob.create).
    async with client(url) as c:
        plan = _flows.plan_create(Dataset.from_jsonl(path), JobOptions(model=MODEL))
        await arun_flow(_flows.create_flow(plan), c.with_options(max_retries=0), None)


def report(what: str, gap: float, took: float, base: float) -> None:
    print(f"{what:<34} ({took:5.1f} s): worst gap {gap * 1000:7.1f} ms ({gap / base:5.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000, help="examples in the file")
    parser.add_argument(
        "--skip-on-loop", action="store_true", help="skip the on-the-loop comparison"
    )
    args = parser.parse_args()
    # The benchmark is about the loop, not the calendar: keep retirement warnings quiet.
    _flows._today = lambda **_: dt.date(2026, 6, 1)  # type: ignore[attr-defined]
    warnings.simplefilter("ignore", FinetuneKitWarning)
    with tempfile.TemporaryDirectory() as tmp, serve() as url:
        paths = [Path(tmp) / f"train-{i}.jsonl" for i in range(3)]
        for seed, path in enumerate(paths):  # different content: no upload is reused
            write_examples(path, args.n, seed)
        print(f"{args.n:,} examples per file, {paths[0].stat().st_size / 1e6:.1f} MB")
        cold, cold_took = asyncio.run(worst_gap(lambda: create_off_loop(url, paths[0])))
        warm, took = asyncio.run(worst_gap(lambda: create_off_loop(url, paths[1])))
        base, _ = asyncio.run(worst_gap(lambda: bare(took)))
        report("bare event loop", base, took, base)
        report("AsyncJob.create, cold", cold, cold_took, base)
        report("AsyncJob.create, warm", warm, took, base)
        if not args.skip_on_loop:
            gap, on_took = asyncio.run(worst_gap(lambda: create_on_loop(url, paths[2])))
            report("same flow on the loop's thread", gap, on_took, base)
        verdict = "met" if warm < 0.1 else "NOT met"
        print(f"target (warm create: worst gap under 100 ms): {verdict}")


if __name__ == "__main__":
    main()
