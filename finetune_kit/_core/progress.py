"""Progress bars: ``tqdm.auto`` (terminal or notebook), without tqdm's monitor thread.

tqdm starts a monitor thread with its first bar and leaves it running for the life of the
process. A process with extra threads can no longer fork safely, and ``Dataset`` checks large
files in forked workers only when the process is single-threaded — so one progress bar would
quietly make every later large validation single-core. Our bars are updated as work happens,
so they do without the monitor.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["progress_bar"]


@functools.cache
def _bar_class() -> Any:
    from tqdm.auto import tqdm  # imported on first use: importing the package stays light

    return type("ProgressBar", (tqdm,), {"monitor_interval": 0})


def progress_bar(
    *, total: int | None, enabled: bool, description: str, unit: str, leave: bool = True
) -> Any:
    """A bar (a silent one when not ``enabled``), usable as a context manager."""
    return _bar_class()(total=total, disable=not enabled, desc=description, unit=unit, leave=leave)
