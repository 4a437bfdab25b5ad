"""``import finetune_kit`` stays light: the notebook libraries load only when used, and the
retry machinery only when a call is first retried."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import FreshImport

HEAVY = ("matplotlib", "pandas", "ipywidgets", "datasets", "IPython", "numpy")
#: Loaded on a call's first retry only: tenacity imports tornado when it is installed.
RETRY_ONLY = ("tenacity", "tornado")


def test_import_loads_neither_notebook_libraries_nor_the_retry_machinery(
    fresh_import: FreshImport,
) -> None:
    assert [m for m in (*HEAVY, *RETRY_ONLY) if m in fresh_import.modules] == []


def test_the_display_modules_load_no_notebook_library_either() -> None:
    # The modules behind the notebook hooks import their libraries inside the calls.
    code = (
        "import json, sys, finetune_kit, finetune_kit.display._frames, "
        f"finetune_kit.display._plot; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(out.stdout) == []
