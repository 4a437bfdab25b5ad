"""How long ``import finetune_kit`` takes, against ``import openai`` measured in the same run.

Each import runs in a fresh interpreter (nothing cached in ``sys.modules``); the interpreter's
own start-up, measured the same way with an empty program, is subtracted. Runs alternate
between the programs so that a busy machine slows all of them alike; medians are compared.
Target: ``finetune_kit`` within 1.2x of ``openai`` (it imports openai, so at least 1.0x), and
none of the notebook libraries (matplotlib, pandas, ipywidgets, datasets) nor tenacity (and the
tornado it pulls in) loaded.

Usage: ``python benchmarks/import_time.py [--runs 15]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PROGRAMS = {
    "empty": "pass",
    "openai": "import openai",
    "finetune_kit": "import finetune_kit",
}
NOTEBOOK_LIBRARIES = ("matplotlib", "pandas", "ipywidgets", "datasets")
#: Loaded on a call's first retry only, never by the import: tenacity imports tornado whenever
#: it is installed (Jupyter installs it), which costs tens of milliseconds.
RETRY_ONLY = ("tenacity", "tornado")


def _once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    for code in PROGRAMS.values():  # warm the file system cache and the .pyc files
        _once(code)
    times: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(args.runs):
        for name, code in PROGRAMS.items():
            times[name].append(_once(code))
    medians = {name: statistics.median(values) for name, values in times.items()}
    empty = medians["empty"]
    base = medians["openai"] - empty
    ours = medians["finetune_kit"] - empty
    ratio = ours / base
    probe = (
        "import json, sys, finetune_kit; "
        f"print(json.dumps([m for m in {NOTEBOOK_LIBRARIES + RETRY_ONLY!r} "
        "if m in sys.modules]))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout
    )

    print(f"python start-up        {empty * 1000:8.1f} ms (subtracted)")
    print(f"import openai          {base * 1000:8.1f} ms")
    print(f"import finetune_kit    {ours * 1000:8.1f} ms")
    print(f"ratio                  {ratio:8.2f}x  (target <= 1.20x; {args.runs} runs, medians)")
    ours_loaded = [m for m in loaded if m in NOTEBOOK_LIBRARIES]
    print(f"notebook libraries loaded by the import: {ours_loaded or 'none'}")
    retry_loaded = [m for m in loaded if m in RETRY_ONLY]
    print(f"retry machinery loaded by the import: {retry_loaded or 'none'}")


if __name__ == "__main__":
    main()
