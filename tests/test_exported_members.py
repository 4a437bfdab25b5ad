"""The public face: exactly these names, sorted, each defined by the package itself.

Adding a public name is a deliberate act: change ``tests/public_api/<module>.txt`` in the same
commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import finetune_kit
import finetune_kit.local

if TYPE_CHECKING:
    from tests.conftest import FreshImport


def _pinned(module: str) -> list[str]:
    # The lists are data (one name a line), kept beside the tests: a reviewer sees a public
    # name come or go as a one-line diff there.
    path = Path(__file__).with_name("public_api") / f"{module}.txt"
    return path.read_text(encoding="utf-8").split()


PUBLIC = _pinned("finetune_kit")
LOCAL_PUBLIC = _pinned("finetune_kit.local")


def test_all_is_exactly_the_public_names_sorted() -> None:
    assert finetune_kit.__all__ == PUBLIC
    assert finetune_kit.__all__ == sorted(finetune_kit.__all__)


def test_local_all_is_exactly_its_public_names() -> None:
    assert finetune_kit.local.__all__ == LOCAL_PUBLIC


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "__version__"])
def test_public_members_come_from_the_package(name: str) -> None:
    member = getattr(finetune_kit, name)
    assert member.__module__.startswith("finetune_kit."), name
    # Shown as the package's own in reprs and docs, not as a private module's.
    assert member.__doc__, f"{name} has no docstring"


def test_no_other_public_attributes() -> None:
    public = {n for n in dir(finetune_kit) if not n.startswith("_")}
    # The capability folders are subpackages (their modules are private); `local` is the
    # public local backend.
    folders = {p.name for p in Path(finetune_kit.__file__).parent.iterdir() if p.is_dir()}
    folders |= {p.stem for p in Path(finetune_kit.__file__).parent.glob("*.py")}
    assert public - folders <= set(PUBLIC)


def test_import_is_cheap_and_side_effect_free(fresh_import: FreshImport) -> None:
    # Importing must not load encodings, build clients, fill caches or print anything, even
    # with no OPENAI_* environment (a client built at import would fail without a key).
    assert fresh_import.encodings_loaded == 0
    assert not fresh_import.default_clients_built
    assert fresh_import.label_plans_cached == 0
    assert fresh_import.stdout == ""
    assert fresh_import.stderr == ""
