"""The house's rules that imports and sizes can show: checks and fixes never import
each other (nor one fix another), host knowledge never imports the engine, checks,
fixes or the fix engine, and a check stays the verdict and its words."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = "shipyard_doctor"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py")


def test_checks_and_fixes_do_not_import_each_other():
    for path in _modules("checks"):
        bad = {m for m in _imports(path) if m.startswith(f"{PACKAGE}.fixes")}
        assert not bad, f"{path.name} imports {bad}"
    for path in _modules("fixes"):
        bad = {
            m
            for m in _imports(path)
            if m.startswith((f"{PACKAGE}.fixes", f"{PACKAGE}.checks"))
        }
        assert not bad, f"fixes/{path.name} imports {bad}"


def test_host_knowledge_imports_no_engine():
    engine = (
        *("cli", "cli_deploy", "commands", "runner", "registry", "render"),
        *("fixengine", "fixing", "deploy", "report"),
    )
    banned = tuple(f"{PACKAGE}.{name}" for name in (*engine, "checks", "fixes"))
    for path in _modules("doctor/host"):
        bad = {m for m in _imports(path) if m.startswith(banned)}
        assert not bad, f"host/{path.name} imports {bad}"


def _size(path: Path) -> int:
    """Lines of a module other than its import statements: a check imports its host
    modules inside the functions that use them (discovery stays cheap), and where
    an import sits does not make a check bigger."""
    text = path.read_text()
    imports = {
        line
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)
    }
    return sum(1 for n, _ in enumerate(text.splitlines(), 1) if n not in imports)


def test_checks_are_small():
    sizes = {p.name: _size(p) for p in _modules("checks")}
    assert max(sizes.values()) <= 160, sizes


def test_plugins_import_no_host_knowledge_at_the_top():
    """discover() and `list` import every check and fix module: their host, fix
    engine, config and stack imports belong inside the functions (or under
    TYPE_CHECKING), so listing plugins does not load what running them needs."""
    lazy = tuple(
        f"{PACKAGE}.{name}" for name in ("host", "fixengine", "config", "stacks")
    )
    for path in (*_modules("checks"), *_modules("fixes")):
        top = ast.parse(path.read_text()).body
        eager = {
            node.module
            for node in top
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith(lazy)
        }
        assert not eager, f"{path.parent.name}/{path.name} imports {eager} at the top"
