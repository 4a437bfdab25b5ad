"""Optional dependencies, imported on first use with an error that names the extra."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["optional"]


def optional(module: str, extra: str) -> Any:
    """Import ``module`` or say which extra of finetune-kit installs it.

    Raises:
        ImportError: ``module`` is not installed; the message gives the pip command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module.split('.')[0]} is needed for this; install it with "
            f'pip install "finetune-kit[{extra}]"'
        ) from exc
