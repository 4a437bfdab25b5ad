"""The one terminal question the commands ask (kept apart from ``_main`` so that command
modules can use it without importing the module that imports them)."""

from __future__ import annotations

import sys

__all__ = ["ask"]


def ask(question: str) -> bool | None:
    """Ask a yes/no question on the terminal: True/False, or None when there is none to ask on.

    The question goes to stderr so that stdout stays clean for ``--json`` and pipes.
    """
    if not sys.stdin.isatty():
        return None
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in {"y", "yes"}
