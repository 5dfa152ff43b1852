"""Dependencies point inward: the layering rules of docs/architecture.md, checked on the AST.

Every ``import`` counts, including those under ``TYPE_CHECKING`` and inside functions:
a type-only edge still couples two layers for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hedgegrid_ops

PACKAGE_DIR = Path(hedgegrid_ops.__file__).parent
ROOT = "hedgegrid_ops"

# (layer, prefixes it must not import). A layer is a module or a package prefix.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "hedgegrid_ops.strategy": ("hedgegrid_ops.ops", "hedgegrid_ops.client", "hedgegrid_ops.cli"),
    "hedgegrid_ops.ops": ("hedgegrid_ops.strategy", "hedgegrid_ops.node", "hedgegrid_ops.venues"),
    # The neutral vocabulary every layer shares depends on no layer.
    "hedgegrid_ops.commands": ("hedgegrid_ops.",),
    "hedgegrid_ops.snapshot": ("hedgegrid_ops.ops", "hedgegrid_ops.strategy"),
    "hedgegrid_ops.loop_bridge": ("hedgegrid_ops.",),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module ``source`` imports (relative imports resolved)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                names.add(f"{prefix}.{node.module}" if node.module else prefix)
            elif node.module:
                names.add(node.module)
    return names


def own_modules() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(path)
        out[name] = imports_of(path.read_text(encoding="utf-8"), name, path.stem == "__init__")
    return out


def _within(name: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def violations(modules: dict[str, set[str]]) -> list[str]:
    found: list[str] = []
    for module, imported in modules.items():
        for layer, banned in FORBIDDEN.items():
            if not _within(module, layer):
                continue
            for name in sorted(imported):
                if any(_within(name, b) for b in banned):
                    found.append(f"{module} imports {name}")
        if _within(module, "hedgegrid_ops.grid"):
            for name in sorted(imported):
                if _within(name, ROOT) and not _within(name, "hedgegrid_ops.grid"):
                    found.append(f"{module} imports {name} (grid imports nothing of ours)")
    return found


def test_the_package_follows_the_layering() -> None:
    modules = own_modules()
    assert {"hedgegrid_ops.grid.diff", "hedgegrid_ops.strategy.hedge_grid"} <= set(modules)
    assert violations(modules) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "hedgegrid_ops.strategy.control",
            "from hedgegrid_ops.ops.bus import CommandBus",
            "hedgegrid_ops.strategy.control imports hedgegrid_ops.ops.bus",
        ),
        (
            "hedgegrid_ops.strategy.control",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..ops import bus",
            "hedgegrid_ops.strategy.control imports hedgegrid_ops.ops",
        ),
        (
            "hedgegrid_ops.ops.routes",
            "def f():\n    import hedgegrid_ops.strategy.views",
            "hedgegrid_ops.ops.routes imports hedgegrid_ops.strategy.views",
        ),
        (
            "hedgegrid_ops.grid.diff",
            "from hedgegrid_ops.snapshot import TradingState",
            "hedgegrid_ops.grid.diff imports hedgegrid_ops.snapshot (grid imports nothing of ours)",
        ),
        (
            "hedgegrid_ops.commands",
            "from hedgegrid_ops.snapshot import TradingState",
            "hedgegrid_ops.commands imports hedgegrid_ops.snapshot",
        ),
    ],
)
def test_the_check_catches_a_forbidden_import(module: str, source: str, expected: str) -> None:
    assert violations({module: imports_of(source, module)}) == [expected]


def test_allowed_imports_pass() -> None:
    modules = {
        "hedgegrid_ops.strategy.control": imports_of(
            "from hedgegrid_ops.commands import CommandConflict\nfrom . import book",
            "hedgegrid_ops.strategy.control",
        ),
        "hedgegrid_ops.grid.diff": imports_of("from .types import Rung", "hedgegrid_ops.grid.diff"),
        "hedgegrid_ops.opsx": imports_of("import hedgegrid_ops.strategy", "hedgegrid_ops.opsx"),
    }
    assert violations(modules) == []
