"""The imports of ``nodus_cli`` point down, and no module reaches itself through them.

Layers, lowest first (a module may import its own layer's and lower layers' modules):

1. ``base``: what everything may use and that knows no concern (errors, file writing,
   JSON values, time parsing, masking, facts of a numeric series, progress callbacks,
   signals as interrupts, finding the workspace).
2. ``store``: the DuckDB store. It knows no capability: each one declares its tables
   in its ``schema.py``, and ``nodus_cli.schemas`` registers them.
3. ``capability``: one library package per concern. They may use each other (audit
   signs with keys, scaleout exports the store's rows, ...) but never the layers
   above, so each stays usable without a terminal.
4. ``composition``: modules that wire several capabilities together (``schemas``
   lists which packages own tables; ``quickstart`` runs them all end to end).
5. ``cli``: argument parsing and rendering, on top of everything.

Every import counts, wherever it is written: inside a function (lazy, for startup
time) or under ``TYPE_CHECKING`` it is still a dependency. The imports are read with
``ast`` from the source, so no module is imported to check them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nodus_cli"

LAYERS = ("base", "store", "capability", "composition", "cli")
LAYER_OF = {
    "nodus_cli": "base",
    "nodus_cli.errors": "base",
    "nodus_cli.fsutil": "base",
    "nodus_cli.interrupts": "base",
    "nodus_cli.jsonvalues": "base",
    "nodus_cli.masking": "base",
    "nodus_cli.progress": "base",
    "nodus_cli.timeparse": "base",
    "nodus_cli.series": "base",
    "nodus_cli.workspace": "base",
    "nodus_cli.store": "store",
    "nodus_cli.anomaly": "capability",
    "nodus_cli.audit": "capability",
    "nodus_cli.confops": "capability",
    "nodus_cli.forecast": "capability",
    "nodus_cli.ingest": "capability",
    "nodus_cli.keys": "capability",
    "nodus_cli.patterns": "capability",
    "nodus_cli.scaleout": "capability",
    "nodus_cli.sqltools": "capability",
    "nodus_cli.timeline": "capability",
    "nodus_cli.schemas": "composition",
    "nodus_cli.quickstart": "composition",
    "nodus_cli.cli": "cli",
    "nodus_cli.__main__": "cli",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    """The layer of ``module``: that of its longest listed prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = LAYER_OF.get(".".join(parts[:end]))
        if found is not None:
            return found
    raise AssertionError(f"{module} belongs to no layer: add it to LAYER_OF")


def imported_modules(module: str, source: str | None = None) -> set[str]:
    """The ``nodus_cli`` modules ``module`` imports: ``from P import m`` imports P.m
    when m is a module, else P."""
    path = MODULES[module]
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if path.name == "__init__.py" else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("nodus_cli") and name != module:
                found.add(name)
    return found


GRAPH = {module: imported_modules(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    rank = LAYERS.index(layer(module))
    upward = sorted(
        f"{target} ({layer(target)})"
        for target in GRAPH[module]
        if LAYERS.index(layer(target)) > rank
    )
    assert upward == [], f"{module} ({layer(module)}) imports a higher layer: {upward}"


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle() -> None:
    assert import_cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_the_reader_sees_every_kind_of_import() -> None:
    source = """
from typing import TYPE_CHECKING
import nodus_cli.errors
from nodus_cli.store import db, Store
from . import guard
if TYPE_CHECKING:
    from nodus_cli.keys.record import KeyRecord
def later():
    from nodus_cli.cli import output
"""
    assert imported_modules("nodus_cli.store.query", source) == {
        "nodus_cli.errors",
        "nodus_cli.store",
        "nodus_cli.store.db",
        "nodus_cli.store.guard",
        "nodus_cli.keys.record",
        "nodus_cli.cli.output",
    }
