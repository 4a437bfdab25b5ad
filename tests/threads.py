"""Which thread Dataset work runs on, for the tests that keep it off the event loop."""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from typing import TYPE_CHECKING, Any

from finetune_kit import Dataset

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest


def record_dataset_threads(
    monkeypatch: pytest.MonkeyPatch, recorded: Callable[[str], bool]
) -> list[tuple[str, int]]:
    """From now on, every Dataset method named ``recorded`` and every SHA-256 (the upload's
    content hash) appends its name and the thread it ran on to the returned list."""
    where: list[tuple[str, int]] = []

    def recording(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            where.append((name, threading.get_ident()))
            return fn(*args, **kwargs)

        return wrapper

    for name, member in list(vars(Dataset).items()):
        if inspect.isfunction(member) and recorded(name):
            monkeypatch.setattr(Dataset, name, recording(name, member))
    monkeypatch.setattr(hashlib, "sha256", recording("sha256", hashlib.sha256))
    return where
