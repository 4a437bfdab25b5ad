"""``import finetune_kit`` stays light: the notebook libraries load only when used, and the
retry machinery only when a call is first retried."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "pandas", "ipywidgets", "datasets", "IPython", "numpy")
#: Loaded on a call's first retry only: tenacity imports tornado when it is installed.
RETRY_ONLY = ("tenacity", "tornado")


@pytest.mark.parametrize(
    ("imports", "absent"),
    [
        ("finetune_kit, finetune_kit.display._frames, finetune_kit.display._plot", HEAVY),
        ("finetune_kit", RETRY_ONLY),
    ],
    ids=["notebook-libraries", "retry-machinery"],
)
def test_import_loads_nothing_it_does_not_need(imports: str, absent: tuple[str, ...]) -> None:
    code = (
        f"import json, sys, {imports}; "
        f"print(json.dumps([m for m in {absent!r} if m in sys.modules]))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(out.stdout) == []
