"""``import finetune_kit`` stays light: the notebook libraries load only when used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("matplotlib", "pandas", "ipywidgets", "datasets", "IPython", "numpy")


def test_import_loads_no_notebook_library() -> None:
    code = (
        "import json, sys, finetune_kit, finetune_kit.display._frames, finetune_kit.display._plot; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(out.stdout) == []
