"""The source tree's own gates: `mypy --strict` on doctor/, checks/ and fixes/ under
their installed names (scripts/typecheck), and ruff's lint and format on the whole
repository (README.md's Python example included). Both tools come with the `test`
extra: without them this skips saying so, and fails under CI=true."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import infra

ROOT = Path(__file__).parent.parent
TREES = ("doctor", "checks", "fixes")


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        infra.missing(f"{module} is not installed: pip install -e '.[test]'")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_mypy_strict_passes_on_every_module_of_the_package():
    _require("mypy")
    done = _run("scripts/typecheck")
    assert done.returncode == 0, done.stdout + done.stderr
    # Every module of the three trees was checked, under its installed name.
    sources = sum(1 for tree in TREES for _ in (ROOT / tree).rglob("*.py"))
    checked = re.search(r"no issues found in (\d+) source files", done.stdout)
    assert checked is not None, done.stdout
    assert int(checked.group(1)) == sources, done.stdout


def test_ruff_lint_and_format_are_clean():
    _require("ruff")
    lint = _run("-m", "ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = _run("-m", "ruff", "format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
