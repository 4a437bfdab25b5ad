"""The folder tree is the architecture: these tests read the package's imports from its source.

Every ``import`` and ``from ... import`` of ``finetune_kit`` counts, wherever it stands: at
module level, inside functions (lazy imports) and under ``if TYPE_CHECKING:``. Relative
imports are resolved against the importing module. The layer order below is read from the
code (see docs/architecture.md); a folder may import its own folder and any folder *below*
it, never one above.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "finetune_kit"

#: Bottom first. Each folder (or top-level module) may import only those before it.
#: ``jobs`` sits above ``models``: a job produces a TunedModel (``Job.wait()``), a TunedModel
#: never needs a job (it must keep working after job creation ends). ``display`` sits above
#: the objects it draws; ``__init__`` (the public face) re-exports from everything.
LAYERS = (
    "_version",
    "_exceptions",
    "facts",
    "_core",
    "datasets",
    "classification",
    "evaluate",
    "models",
    "jobs",
    "display",
    "cli",
    "__init__",
)
#: The local backend is beside the stack, not in it: it may import only ``facts`` (and what
#: facts imports), so that it never checks the client with the client's own code.
LOCAL = "local"
LOCAL_MAY_IMPORT = frozenset({"facts", "_exceptions"})
#: Only the command line starts a local backend.
IMPORTS_LOCAL = frozenset({"cli", "__init__"})

#: The one allowed kind of upward import: notebook hooks (``_repr_html_``, ``plot()``,
#: ``to_pandas()``) on lower-level objects import ``finetune_kit.display`` *inside the
#: method*, so display and its optional dependencies load only when something is drawn, and
#: the objects stay usable where display is never imported. A module-level or type-checking
#: import of display from below is still a violation.
LAZY_HOOK_TARGET = "display"

#: Violations in code this test does not own, each exact and with why; the test fails when
#: one disappears, so the list only ever shrinks.
KNOWN: frozenset[tuple[str, str]] = frozenset(
    {
        # _exceptions names DatasetValidationError.problems' type; Problem belongs below
        # datasets (e.g. in _exceptions itself) for the annotation not to point upward.
        ("finetune_kit._exceptions", "finetune_kit.datasets._reports"),
    }
)

MAX_LINES = 600


@dataclasses.dataclass(frozen=True)
class Import:
    """One import of one of our modules."""

    source: str
    target: str
    line: int
    lazy: bool  # inside a function
    typing_only: bool  # under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        where = "lazy " if self.lazy else "type-checking " if self.typing_only else ""
        return f"{self.source}:{self.line} {where}imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    """The folder (or top-level module) a module belongs to; the package itself is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path) -> None:
        self.module = module
        self.package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        self.depth = 0
        self.typing = 0
        self.found: list[Import] = []

    def _add(self, target: str, line: int) -> None:
        if target == "finetune_kit" or target.startswith("finetune_kit."):
            self.found.append(Import(self.module, target, line, self.depth > 0, self.typing > 0))

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            self.typing += 1
            for child in node.body:
                self.visit(child)
            self.typing -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join([*base, node.module] if node.module else base)
        else:
            origin = node.module or ""
        for alias in node.names:
            # `from . import _x` imports the module `_x`; `from .a import B` imports `a`.
            submodule = f"{origin}.{alias.name}"
            self._add(submodule if submodule in MODULES else origin, node.lineno)


def collect_imports() -> list[Import]:
    """Every import of ``finetune_kit`` in the package's source."""
    found: list[Import] = []
    for module, path in MODULES.items():
        collector = _Collector(module, path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += collector.found
    return found


IMPORTS = collect_imports()


def _is_lazy_hook(imp: Import) -> bool:
    return imp.lazy and layer_of(imp.target) == LAZY_HOOK_TARGET


def _upward(imp: Import) -> bool:
    source, target = layer_of(imp.source), layer_of(imp.target)
    if source == target:
        return False
    if LOCAL in (source, target):
        if source == LOCAL:
            return target not in LOCAL_MAY_IMPORT
        return source not in IMPORTS_LOCAL
    return LAYERS.index(target) > LAYERS.index(source)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _module_edges(imports: list[Import], known: frozenset[tuple[str, str]]) -> dict[str, set[str]]:
    # Type-checking imports never run, so they cannot make an import cycle; lazy ones can.
    edges: dict[str, set[str]] = {}
    for imp in imports:
        pair = (imp.source, imp.target)
        if imp.typing_only or _is_lazy_hook(imp) or pair in known or imp.source == imp.target:
            continue
        edges.setdefault(imp.source, set()).add(imp.target)
    return edges


def violations(
    imports: list[Import], known: frozenset[tuple[str, str]] = frozenset()
) -> set[tuple[str, str]]:
    """The (importer, imported) pairs that break the layering: upward imports (but for the
    lazy display hooks) and imports inside a module-level import cycle; ``known`` aside."""
    found = {
        (i.source, i.target)
        for i in imports
        if _upward(i) and not _is_lazy_hook(i) and (i.source, i.target) not in known
    }
    edges = _module_edges(imports, known)
    for component in _cycles(edges):
        members = set(component)
        found |= {(a, b) for a in component for b in edges[a] if b in members}
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    # Guards the collector itself: a lazy, a type-checking and a relative import it must find.
    kinds = {(i.lazy, i.typing_only) for i in IMPORTS}
    assert {(False, False), (True, False), (False, True)} <= kinds
    assert any(
        i.source == "finetune_kit.cli._main" and i.target.endswith("_classify") for i in IMPORTS
    )
    assert set(LAYERS) | {LOCAL} == {layer_of(m) for m in MODULES}


def test_no_cycle_between_folders() -> None:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        source, target = layer_of(imp.source), layer_of(imp.target)
        if source != target and not _is_lazy_hook(imp) and (imp.source, imp.target) not in KNOWN:
            edges.setdefault(source, set()).add(target)
    assert _cycles(edges) == []


def test_no_cycle_between_modules() -> None:
    assert _cycles(_module_edges(IMPORTS, KNOWN)) == []


def test_nothing_imports_upward() -> None:
    upward = [
        str(i)
        for i in IMPORTS
        if _upward(i) and not _is_lazy_hook(i) and (i.source, i.target) not in KNOWN
    ]
    assert upward == []


def test_known_violations_are_exactly_the_ones_left() -> None:
    # Strict both ways: a new violation fails, and so does a fixed one still listed in KNOWN
    # (drop it, so that it cannot come back unnoticed).
    assert violations(IMPORTS, KNOWN) == set()
    stale = [pair for pair in sorted(KNOWN) if not violations(IMPORTS, KNOWN - {pair})]
    assert stale == []


def test_the_rules_catch_what_they_should() -> None:
    # The checker itself, on made-up imports: each rule must bite.
    def imp(source: str, target: str, *, lazy: bool = False, typing: bool = False) -> Import:
        return Import(f"finetune_kit.{source}", f"finetune_kit.{target}", 1, lazy, typing)

    assert violations([imp("facts._models", "_core.session", typing=True)])  # upward, typing
    assert violations([imp("datasets._dataset", "display._frames")])  # eager hook
    assert not violations([imp("datasets._dataset", "display._frames", lazy=True)])  # lazy hook
    assert violations([imp("datasets._dataset", "jobs._job", lazy=True)])  # lazy, not display
    assert violations([imp("local._app", "datasets._rules", lazy=True)])  # local beyond facts
    assert violations([imp("jobs._raw", "local")])  # only cli starts a backend
    assert not violations([imp("cli._local", "local", lazy=True)])
    cycle = [imp("jobs._a", "jobs._b"), imp("jobs._b", "jobs._a", lazy=True)]
    assert violations(cycle) == {
        ("finetune_kit.jobs._a", "finetune_kit.jobs._b"),
        ("finetune_kit.jobs._b", "finetune_kit.jobs._a"),
    }
    typing_cycle = [imp("jobs._a", "jobs._b"), imp("jobs._b", "jobs._a", typing=True)]
    assert not violations(typing_cycle)


def test_local_backend_imports_only_facts() -> None:
    ours = {
        layer_of(i.target)
        for i in IMPORTS
        if layer_of(i.source) == LOCAL and layer_of(i.target) != LOCAL
    }
    assert ours <= LOCAL_MAY_IMPORT
    # facts itself stays free of the SDK side, so "facts and what it imports" stays small.
    facts_imports = {layer_of(i.target) for i in IMPORTS if layer_of(i.source) == "facts"}
    assert facts_imports <= {"facts", "_exceptions"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_under_the_line_limit(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def test_no_http_server_in_the_package() -> None:
    # The local backend is Starlette on uvicorn; a hand-rolled http.server must not come back.
    offenders = [
        f"{module}: {name}"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        if name == "http.server"
        or name.startswith(("http.server.", "socketserver"))
        or (
            name == "http"
            and isinstance(node, ast.ImportFrom)
            and any(a.name == "server" for a in node.names)
        )
    ]
    assert offenders == []


def test_the_documented_layer_order_is_the_tested_one() -> None:
    # docs/architecture.md draws the same order this test enforces.
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layer order", 1)[1].split("\n\n", 2)[1]
    documented = [name.strip("` \n") for name in section.split(". A module")[0].split("<")]
    assert documented == [layer for layer in LAYERS if layer != "_version"]
