"""Run examples/quickstart.ipynb top to bottom in a fresh Jupyter kernel.

The notebook's committed outputs and the figures on the docs' "Notebooks" page both come from
this script, never from hand edits: it executes the notebook with nbclient (any error fails the
run), writes the executed notebook back, and saves the figure of each cell tagged
``figure:NAME`` as ``docs/images/NAME.png``.

Needs the ``notebook`` extra: ``pip install -e ".[notebook]"``.

Usage::

    python examples/build_notebook.py            # execute, keep the outputs, write the images
    python examples/build_notebook.py --check    # execute only; exit 1 on the first error
    python examples/build_notebook.py --output run.ipynb --images /tmp/figures
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
IMAGES = ROOT / "docs" / "images"
FIGURE_TAG = "figure:"
#: Seconds one cell may take (the fine-tuning cell trains a model).
CELL_TIMEOUT = 600
# nbformat's read and write carry no annotations: typed as Any here, once.
_read: Any = nbformat.read
_write: Any = nbformat.write


def execute(path: Path) -> Any:
    """The notebook at ``path``, executed in a fresh ``python3`` kernel from its folder.

    Raises:
        CellExecutionError: a cell raised; the message shows the cell and the traceback.
    """
    notebook = _read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        record_timing=False,  # timings would change the file on every run
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def figures(notebook: Any) -> dict[str, bytes]:
    """PNG bytes of each cell tagged ``figure:NAME``, by NAME (the cell's last image)."""
    found: dict[str, bytes] = {}
    for cell in notebook.cells:
        names = [
            t[len(FIGURE_TAG) :] for t in cell.metadata.get("tags", []) if t.startswith(FIGURE_TAG)
        ]
        pngs = [
            o["data"]["image/png"]
            for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        for name in names:
            if not pngs:
                raise SystemExit(f"cell tagged {FIGURE_TAG}{name} drew no figure")
            found[name] = base64.b64decode(pngs[-1])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--check", action="store_true", help="execute only, write nothing")
    parser.add_argument("--output", type=Path, help="where to write the executed notebook")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder for the figures")
    args = parser.parse_args()

    try:
        notebook = execute(args.notebook)
    except CellExecutionError as exc:
        sys.stderr.write(f"{args.notebook} failed:\n{exc}\n")
        return 1
    if args.check:
        print(f"{args.notebook}: all cells ran")
        return 0
    output = args.output or args.notebook
    _write(notebook, output)
    args.images.mkdir(parents=True, exist_ok=True)
    for name, png in figures(notebook).items():
        (args.images / f"{name}.png").write_bytes(png)
        print(f"wrote {args.images / f'{name}.png'}")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
