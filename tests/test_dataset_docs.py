"""docs/datasets.md documents every validation code with its real severity."""

from __future__ import annotations

import re
from pathlib import Path

from finetune_kit.datasets._codes import CODES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "datasets.md"


def test_every_code_is_documented_with_its_severity() -> None:
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (error|warning) \|", DOCS.read_text(), re.M))
    assert rows == {code: severity for code, (severity, _) in CODES.items()}
