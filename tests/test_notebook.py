"""examples/quickstart.ipynb runs top to bottom in a fresh Jupyter kernel, without an error.

Needs the ``notebook`` extra (nbclient, nbformat, ipykernel, ipywidgets, matplotlib, pandas);
without it the test is skipped and says so. CI installs the extra and runs it (.ci/run).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("nbclient", "nbformat", "ipykernel", "ipywidgets", "matplotlib", "pandas")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]
FIGURES = {"token_lengths", "loss", "comparison", "confusion"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the notebook extra is not installed (missing {', '.join(MISSING)}): "
        'pip install -e ".[notebook]"',
    ),
]


def test_quickstart_notebook_runs_clean(tmp_path: Path) -> None:
    output = tmp_path / "quickstart.ipynb"
    images = tmp_path / "images"

    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "build_notebook.py"),
            "--output",
            str(output),
            "--images",
            str(images),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    cells = [c for c in json.loads(output.read_text())["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in cells for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert all(c["execution_count"] for c in cells), "every cell ran"
    # Rich output: the reprs render as HTML, and waiting shows a notebook progress widget.
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("Validation report" in "".join(o["data"]["text/html"]) for o in html)
    assert any("Confusion matrix" in "".join(o["data"]["text/html"]) for o in html)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert {p.stem for p in images.glob("*.png")} == FIGURES
