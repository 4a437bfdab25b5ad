"""How long the test suite takes, against the suite of an earlier commit run in the same session.

Issue 10 asked that the suite run at least as fast as it did when it was filed (commit
``48066cd``: 569 tests). This script checks that commit out into a temporary git worktree and
runs both suites in this interpreter's environment, alternating (baseline, current, baseline,
...) so that a busy machine slows both alike; it prints each run's wall and CPU time (the
process and its children), the medians and their ratio. The current suite runs as the README
says (``pytest``, so with the options ``pyproject.toml`` gives it); the baseline runs with its
own configuration (serial) and its own code (``PYTHONPATH`` points at the worktree).

Target: current wall time / baseline wall time <= 1.0.

Usage: ``python benchmarks/suite_speed.py [--baseline 48066cd] [--runs 3]`` from a git checkout
with the development extra installed (``pip install -e ".[dev]"``).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: main when issue 10 was filed (the end of the first round).
DEFAULT_BASELINE = "48066cd"


def _run(tree: Path, *, baseline: bool) -> tuple[float, float, str]:
    """One whole suite in ``tree``: (wall seconds, CPU seconds, pytest's summary line)."""
    env = {**os.environ, "PYTHONPATH": str(tree)} if baseline else dict(os.environ)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ passed", line)]
    if done.returncode != 0 or not lines:
        sys.exit(f"the suite in {tree} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return wall, cpu, lines[-1].strip("= ")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="the commit to compare to")
    parser.add_argument("--runs", type=int, default=3, help="runs of each suite")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(old), args.baseline],
            cwd=ROOT,
            check=True,
        )
        try:
            times: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
            for n in range(args.runs):
                for name, tree in (("baseline", old), ("current", ROOT)):
                    wall, cpu, summary = _run(tree, baseline=name == "baseline")
                    times[name].append((wall, cpu))
                    print(f"run {n + 1} {name:8} wall {wall:6.1f} s  cpu {cpu:6.1f} s  {summary}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)

    walls = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpus = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    print(f"median wall: baseline {walls['baseline']:.1f} s, current {walls['current']:.1f} s")
    print(f"median cpu:  baseline {cpus['baseline']:.1f} s, current {cpus['current']:.1f} s")
    ratio = walls["current"] / walls["baseline"]
    print(f"wall ratio current/baseline: {ratio:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
