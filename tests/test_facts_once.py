"""Each fact about the service is written once in the package: in facts/, read from there.

A copy drifts: the day the service changes a number, one place gets the change and the copy
keeps the old one. Each case greps the package source for the literals that *define* one fact
and expects to find them in exactly the one module that owns it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finetune_kit.facts._models import OPENAI_FACTS, lifecycle_dates

PACKAGE = Path(__file__).resolve().parent.parent / "finetune_kit"


def _files_matching(pattern: re.Pattern[str]) -> set[str]:
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if pattern.search(path.read_text(encoding="utf-8"))
    }


def _lifecycle_dates() -> str:
    # Every date in the catalogue, as ISO text or as dt.date(...) arguments.
    days = lifecycle_dates()
    assert days, "the catalogue has dates"
    forms = [d.isoformat() for d in days]
    forms += [rf"date\(\s*{d.year},\s*{d.month},\s*{d.day}\s*\)" for d in days]
    return "|".join(forms)


def _price_lines() -> str:
    # A model name followed on the same line by its OpenAI training price as a float literal.
    forms = []
    for base, facts in OPENAI_FACTS.models.items():
        if facts.price_per_mtok is not None:
            whole, _, frac = f"{facts.price_per_mtok:.2f}".partition(".")
            digits = frac.rstrip("0")
            number = rf"{whole}\.{digits}0*\b" if digits else rf"{whole}\.0*\b"
            forms.append(rf'"{re.escape(base)}"[^\n]*?\b{number}')
    return "|".join(forms)


CASES = [
    pytest.param(
        "default epochs",
        r"25_?000\s*//\s*\w+",
        {"facts/_models.py"},
        id="default-epochs",
    ),
    pytest.param(
        "tokens-per-message formula",
        r"(?i)tokens_per_message\s*(?::[^=\n]*)?=\s*3\b|\b3 per message\b",
        {"facts/_tokens.py"},
        id="token-formula",
    ),
    pytest.param(
        "the Method literal",
        r'Literal\[\s*"supervised",\s*"dpo",\s*"reinforcement"\s*\]',
        {"facts/_models.py"},
        id="method-literal",
    ),
    pytest.param("training prices", _price_lines(), {"facts/_models.py"}, id="prices"),
    pytest.param("lifecycle dates", _lifecycle_dates(), {"facts/_models.py"}, id="dates"),
]


@pytest.mark.parametrize(("fact", "pattern", "owner"), CASES)
def test_fact_is_defined_once(fact: str, pattern: str, owner: set[str]) -> None:
    found = _files_matching(re.compile(pattern))
    assert found == owner, f"{fact} is defined in {sorted(found)}; only {sorted(owner)} may"
