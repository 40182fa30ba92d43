"""The import graph of ``otel_ai`` has no circles, and the rooms import one way.

Read from the source with :mod:`ast` (nothing is imported): every ``import`` / ``from … import``
of an ``otel_ai`` module, and the package ``__init__`` modules such an import runs, at module
level or inside a function (a deferred import hides a circle, it does not remove it), except
under ``if TYPE_CHECKING:``. A failure prints the circle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "otel_ai"
SKIP = ("otel_ai.ingest.proto_gen",)  # generated code


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: p for m, p in found.items() if not m.startswith(SKIP)}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``otel_ai`` modules ``module`` imports (a name imported from a package counts as the
    submodule when one of that name exists, else as the package)."""
    out: set[str] = set()

    def resolve(name: str) -> None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        # Importing a.b.c also runs a/b/__init__.py unless ``module`` is inside a.b already.
        while name and name != "otel_ai":
            if name != module and not module.startswith(name + "."):
                out.add(name)
            name = name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("otel_ai"):
                    resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("otel_ai"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    resolve(sub if sub in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


@functools.cache
def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        m: _imports(ast.parse(p.read_text(), str(p)), m, p.name == "__init__.py", known)
        for m, p in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as one circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_circle(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def _circle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One concrete path around a component: start at its first module, walk back to it."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    return sorted(component)  # pragma: no cover - a component always closes


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "otel_ai.storage.writer" in graph["otel_ai.daemon"] or any(
        "otel_ai.storage" in deps for deps in graph.values()
    )
    assert "otel_ai.errors" in graph["otel_ai.storage.client"]


def test_no_circular_imports() -> None:
    found = cycles(import_graph())
    assert not found, "circular imports:\n" + "\n".join(" -> ".join(c) for c in found)


# A room may not import the rooms above it (the arrows of docs/architecture.md). The LLM room
# may use storage (its conversations live in ClickHouse) but nothing of ingest, analysis or the API.
FORBIDDEN = [
    ("otel_ai.native", "otel_ai."),
    ("otel_ai.storage", "otel_ai.pipeline"),
    ("otel_ai.storage", "otel_ai.ingest"),
    ("otel_ai.storage", "otel_ai.api"),
    ("otel_ai.pipeline", "otel_ai.ingest"),
    ("otel_ai.pipeline", "otel_ai.api"),
    ("otel_ai.otlp", "otel_ai.storage"),
    ("otel_ai.otlp", "otel_ai.pipeline"),
    ("otel_ai.analysis", "otel_ai.api"),
    ("otel_ai.analysis", "otel_ai.ingest"),
    ("otel_ai.llm", "otel_ai.api"),
    ("otel_ai.llm", "otel_ai.analysis"),
]


@pytest.mark.parametrize(("room", "above"), FORBIDDEN, ids=[f"{a}-x-{b.rstrip('.')}" for a, b in FORBIDDEN])
def test_rooms_import_one_way(room: str, above: str) -> None:
    graph = import_graph()
    bad = sorted(
        f"{m} -> {dep}"
        for m, deps in graph.items()
        if m == room or m.startswith(room + ".")
        for dep in deps
        if dep.startswith(above) and not (dep == room or dep.startswith(room + "."))
    )
    assert not bad, "imports against the arrows:\n" + "\n".join(bad)


def test_a_circle_is_reported() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
