"""The house's rules that imports and sizes can show: checks and fixes never import
each other (nor one fix another), host knowledge never imports the engine, checks,
fixes or the fix engine, and a check stays the verdict and its words."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
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


def test_checks_are_small():
    # Physical lines, imports included: a check imports its host modules inside the
    # functions that use them (discovery stays cheap), and the evidence gathering
    # and classification belong in those host modules; the check keeps the verdict
    # and its words.
    sizes = {p.name: len(p.read_text().splitlines()) for p in _modules("checks")}
    assert max(sizes.values()) <= 160, sizes


# --- no import cycles ----------------------------------------------------------------

#: pyproject.toml's package-dir: each source folder and the package it installs as.
TREES = {"doctor": PACKAGE, "checks": f"{PACKAGE}.checks", "fixes": f"{PACKAGE}.fixes"}


def _package_modules() -> dict[str, Path]:
    found = {}
    for folder, package in TREES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules *path* imports when it runs: at the top and inside
    functions (a lazy import that goes round is still a cycle), but not under
    ``if TYPE_CHECKING:``, which never runs."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom) and child.module:
                for alias in child.names:
                    name = f"{child.module}.{alias.name}"
                    found.add(name if name in modules else child.module)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found & modules


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of *graph*, as the modules along it, or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once cleared
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := walk(target)):
                return found
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := walk(module)):
            return found
    return None


def test_every_module_of_the_package_imports():
    modules = _package_modules()
    walked = set(TREES.values())
    for name in TREES.values():  # the editable install maps each tree on its own
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            importlib.import_module(info.name)
            walked.add(info.name)
    # The installed package and the source folders are the same modules.
    assert walked == set(modules)


def _package_classes() -> list[type]:
    """Every class defined in the package's modules, nested classes included."""
    found: list[type] = []

    def collect(namespace: dict[str, object], module: str) -> None:
        for value in namespace.values():
            is_own = isinstance(value, type) and value.__module__ == module
            if is_own and value not in found:
                found.append(value)
                collect(dict(vars(value)), module)

    for name in TREES.values():
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            collect(vars(importlib.import_module(info.name)), info.name)
    return found


def _undocumented(cls: type) -> bool:
    """Whether *cls* is a dataclass whose docstring is the one dataclasses made."""
    return dataclasses.is_dataclass(cls) and (cls.__doc__ or "").startswith(
        f"{cls.__name__}("
    )


def test_every_dataclass_has_a_docstring():
    # A dataclass without a docstring of its own gets one made at import time from
    # inspect.signature(cls) ("Name(a: int, ...)"): about 65 us per class, paid on
    # every start of the CLI (issue 12). A docstring saying what the record is costs
    # nothing and documents it.
    offenders = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _package_classes()
        if _undocumented(cls)
    )
    assert not offenders, "dataclasses without a docstring: " + ", ".join(offenders)


def test_an_undocumented_dataclass_is_found():
    # The predicate itself: a test that cannot fail proves nothing.
    bare = dataclasses.make_dataclass("Bare", [("size", int)])
    documented = dataclasses.make_dataclass(
        "Documented", [("size", int)], namespace={"__doc__": "A size."}
    )
    assert _undocumented(bare)
    assert not _undocumented(documented)


def test_no_import_cycles():
    modules = _package_modules()
    graph = {
        name: _runtime_imports(path, set(modules)) for name, path in modules.items()
    }
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or ())


def test_a_cycle_is_found():
    # The search itself, on a graph with one: a test that cannot fail proves nothing.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# --- README's map of the house -------------------------------------------------------


def _map_rows() -> dict[str, str]:
    """README's "Map of the house" table: first column -> the whole row."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Map of the house", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {row.split("|")[1].strip(): row for row in rows}


def test_the_map_names_every_folder_and_engine_module():
    rows = _map_rows()
    tracked = {"checks", "fixes", "tests", "benchmarks", "scripts", ".ci"}
    assert tracked <= {p.name for p in ROOT.iterdir() if p.is_dir()}
    for folder in tracked:
        assert any(f"`{folder}/`" in name for name in rows), f"{folder}/ not in map"
    for package in sorted((ROOT / "doctor").glob("*/__init__.py")):
        name = package.parent.name
        (row,) = [r for n, r in rows.items() if n == f"`doctor/{name}/`"]
        # Every module of the engine's folders is named in its row (host/ names
        # its kinds of facts instead: one module per kind).
        if name != "host":
            for module in package.parent.glob("*.py"):
                if module.stem != "__init__":
                    assert f"`{module.stem}`" in row, f"{name}/{module.name}"
    top = " ".join(r for n, r in rows.items() if n.startswith("`doctor/` "))
    for module in (ROOT / "doctor").glob("*.py"):
        if module.stem != "__init__":
            assert f"`{module.stem}`" in top, f"doctor/{module.name} not in map"


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
