"""`finetune-kit` commands for the classify area (see ``_cli.py`` for the conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's commands to the ``finetune-kit`` parser (none yet)."""
    del sub
