"""Repository-wide pytest set-up (the fixtures live in tests/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject's addopts): every core for the suite or a folder of it, but one
    process when test files or tests are named, where starting workers would cost more than
    the tests take."""
    if any(".py" in arg for arg in config.args):
        return 0
    return None  # xdist's own choice: one worker a CPU
