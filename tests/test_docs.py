"""The docs stand on their own: every metric is listed, every relative link resolves, and nothing
points at a file outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary"}


def _metric_names() -> dict[str, str]:
    """Every metric name the package registers with a literal name → the file that defines it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "otel_ai").rglob("*.py")):
        if "proto_gen" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            if name in METRIC_TYPES and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found[first.value] = str(path.relative_to(ROOT))
    return found


def test_every_metric_has_the_prefix_and_is_listed() -> None:
    names = _metric_names()
    assert "otel_ai_receiver_requests" in names and "otel_ai_writer_insert_seconds" in names
    listed = (ROOT / "docs" / "metrics.md").read_text()
    unprefixed = sorted(n for n in names if not n.startswith("otel_ai_"))
    assert not unprefixed, f"metric names without the otel_ai_ prefix: {unprefixed}"
    missing = sorted(f"{n} ({where})" for n, where in names.items() if f"`{n}`" not in listed)
    assert not missing, "metrics missing from docs/metrics.md:\n" + "\n".join(missing)


def _docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    assert doc.is_file(), doc
    broken = []
    for target in _LINK.findall(doc.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links to nothing: {broken}"


# Written in pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(["DESIGN" + r"\.md", "STYLE" + r"\.md", "_anch" + "ors", "decision " + "[0-9]"]), re.I
)
SEARCHED = ["otel_ai", "tests", "bench", "docs", "demo", "config", "README.md", "CONTRIBUTING.md"]


def test_nothing_points_outside_the_repository() -> None:
    hits = []
    for top in SEARCHED:
        base = ROOT / top
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        for path in files:
            if "node_modules" in path.parts or path.suffix in (".so", ".pyc") or path == Path(__file__):
                continue
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            hits += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)
