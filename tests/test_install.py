"""README's install line works on Debian's own Python with no compiler anywhere on
PATH: a venv from /usr/bin/python3 (PEP 668 refuses pip into the system Python), every
dependency from a wheel, the command linked where root's PATH finds it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from infra import missing

REPO = Path(__file__).resolve().parents[1]
DEBIAN_PYTHON = "/usr/bin/python3"
COMPILER = re.compile(
    r"(^|-)(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|tcc|c89|c99)(-[\d.]+)?$"
)


def readme_install_line() -> str:
    """The first command line of README's Quick start: install, then run."""
    text = (REPO / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1]
    return next(line.strip() for line in quick.splitlines() if line.startswith("    "))


def _build_leftovers() -> set[Path]:
    """What a pip build in the checkout would leave there."""
    return {
        *REPO.glob("*.egg-info"),
        *REPO.glob("build/lib*"),
        *REPO.glob("build/bdist*"),
    }


def path_without_compilers(tmp_path: Path) -> str:
    """A PATH with every system tool but the C compilers (symlinks to the real ones)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for directory in ("/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = tools / name
            if COMPILER.search(name) or target.exists() or target.is_symlink():
                continue
            target.symlink_to(os.path.join(directory, name))
    return str(tools)


@pytest.mark.infra
def test_readme_install_line_on_debian_python_without_a_compiler(tmp_path):
    probe = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import ensurepip, venv"], capture_output=True
    )
    if probe.returncode != 0:
        missing(f"{DEBIAN_PYTHON} with venv: apt-get install python3 python3-venv")
    install, _, then = readme_install_line().partition(" && ")
    assert install == "sudo ./scripts/install", install
    assert then == "sudo shipyard-doctor check", then
    path = path_without_compilers(tmp_path)
    for compiler in ("gcc", "cc", "c++", "x86_64-linux-gnu-gcc"):
        assert shutil.which(compiler, path=path) is None
    prefix, bin_dir = tmp_path / "opt" / "shipyard-doctor", tmp_path / "usr-local-bin"
    # As root already: drop `sudo`; the prefix and bin dir point into the throwaway dir.
    command = f"{install.removeprefix('sudo ')} --prefix {prefix} --bin-dir {bin_dir}"
    before = _build_leftovers()
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env={"PATH": path, "HOME": str(tmp_path), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "installed shipyard-doctor" in done.stdout
    # The venv is Debian's Python, not the one running the tests.
    assert os.path.realpath(prefix / "bin" / "python").startswith("/usr/bin/python3")
    command_path = bin_dir / "shipyard-doctor"
    assert command_path.is_symlink()
    env = {"PATH": path, "NO_COLOR": "1", "LANG": "C.UTF-8"}
    version = subprocess.run(
        [str(command_path), "--version"], capture_output=True, text=True, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("shipyard-doctor ")
    listed = subprocess.run(
        [str(command_path), "list"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert "docker-daemon" in listed.stdout and "ports" in listed.stdout
    # Built from a copy: nothing of pip's build is left in the checkout.
    assert _build_leftovers() == before


def test_install_script_refuses_a_python_too_old_or_missing(tmp_path):
    done = subprocess.run(
        [str(REPO / "scripts" / "install"), "--python", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"install: error: {tmp_path / 'nope'} not found: apt-get install python3 "
        "(or pass --python PATH)"
    )
