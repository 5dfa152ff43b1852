"""The grid package must stay engine-free; this guards the boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import hedgegrid_ops.grid as grid_pkg

GRID_DIR = Path(grid_pkg.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_nautilus_imports() -> None:
    files = sorted(GRID_DIR.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        offending = {m for m in imported_modules(path) if m.split(".")[0] == "nautilus_trader"}
        assert not offending, f"{path.name} imports {offending}"


def test_only_stdlib_and_own_package() -> None:
    allowed_roots = {
        "__future__",
        "collections",
        "dataclasses",
        "decimal",
        "enum",
        "itertools",
        "math",
        "re",
        "hedgegrid_ops",
    }
    for path in GRID_DIR.glob("*.py"):
        roots = {m.split(".")[0] for m in imported_modules(path)}
        assert roots <= allowed_roots, f"{path.name} imports {roots - allowed_roots}"
