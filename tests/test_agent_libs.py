"""agent-libs on real binaries and a real loader.

The agent stand-in is a copy of /usr/bin/true given a DT_NEEDED it lacks (patchelf).
Debian ships libdevmapper.so.1.02.1 (docker.io needs it), so the CoreOS story — that
soname missing, only libdevmapper.so.1.02 installed — is played in a private mount
namespace where an overlay whiteout hides Debian's file from the loader and from the
doctor alike; the namespace, and the overlay with it, ends with the process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import infra_setup
from doctor_cli import run_doctor
from infra import InfraMissing

SONAME = "libdevmapper.so.1.02.1"
LIBZ = "/lib/x86_64-linux-gnu/libz.so.1"
LOADER_ERROR = (
    f"error while loading shared libraries: {SONAME}: cannot open shared object file"
)


@pytest.fixture
def coreos_like(require_infra, tmp_path):
    """A script that runs a command where libdevmapper.so.1.02.1 is not installed."""
    require_infra("unshare", "mount")
    mounts = []
    for n, directory in enumerate(
        sorted({os.path.realpath(d) for d in ("/lib/x86_64-linux-gnu", "/usr/lib64")})
    ):
        if not os.path.exists(os.path.join(directory, SONAME)):
            continue
        upper, work = tmp_path / f"upper{n}", tmp_path / f"work{n}"
        upper.mkdir()
        work.mkdir()
        os.mknod(upper / SONAME, 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
        mounts.append(
            f"mount -t overlay overlay -o lowerdir={directory},upperdir={upper},"
            f"workdir={work} {directory}"
        )
    script = tmp_path / "in-host"
    body = " && ".join([*mounts, 'exec "$@"'])
    script.write_text(
        f"#!/bin/sh\nexec unshare --mount --propagation private sh -c '{body}' sh "
        '"$@"\n'
    )
    script.chmod(0o755)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec {script} {sys.executable} "$@"\n')
    python.chmod(0o755)
    return script, python


def _agent(tmp_path: Path, needed: str, *patch: str) -> Path:
    agent = tmp_path / "bin" / "shipyard-agent"
    agent.parent.mkdir(exist_ok=True)
    shutil.copy("/usr/bin/true", agent)
    subprocess.run(["patchelf", "--add-needed", needed, *patch, agent], check=True)
    return agent


def _config(tmp_path: Path, agent: Path, lib_dirs: list[Path]) -> Path:
    config = tmp_path / "config.toml"
    dirs = ", ".join(f'"{d}"' for d in lib_dirs)
    config.write_text(
        f'[agent]\nbinary = "{agent}"\nlib_dir = "{tmp_path}/opt/shipyard/lib"\n'
        f"[host]\nlib_dirs = [{dirs}]\n"
    )
    return config


def test_missing_soname_names_the_closest_candidate(coreos_like, tmp_path):
    in_host, python = coreos_like
    agent = _agent(tmp_path, SONAME)
    run = subprocess.run([in_host, agent], capture_output=True, text=True)
    assert run.returncode == 127 and LOADER_ERROR in run.stderr, run.stderr
    lib64 = tmp_path / "usr" / "lib64"
    lib64.mkdir(parents=True)
    shutil.copy(LIBZ, lib64 / "libdevmapper.so.1.02")  # what Fedora/CoreOS ship
    config = _config(tmp_path, agent, [lib64])

    doc = run_doctor(
        "check", "--json", "--only", "agent-libs", config=config, python=str(python)
    )
    check = doc.check("agent-libs")
    assert doc.code == 1 and check["status"] == "failure", doc.stdout + doc.stderr
    assert check["summary"] == (
        f"shipyard-agent cannot start: {SONAME} is not installed "
        f"(closest: {lib64}/libdevmapper.so.1.02)"
    )
    assert any(d.startswith(f"{SONAME} => not found") for d in check["details"])
    assert check["data"]["missing"] == [
        {"soname": SONAME, "candidates": [f"{lib64}/libdevmapper.so.1.02"]}
    ]
    hints = "\n".join(check["hints"])
    lib_dir = f"{tmp_path}/opt/shipyard/lib"
    assert "v0.3.0 and later need neither" in hints and "shipyard/agent" in hints
    assert f"ln -s {lib64}/libdevmapper.so.1.02 {lib_dir}/{SONAME}" in hints
    assert f"LD_LIBRARY_PATH={lib_dir} {agent}" in hints
    assert "not guaranteed to be ABI-compatible" in hints
    assert "never write into /lib64 or /usr" in hints

    # The suggested fix, for real: a symlink in a writable dir and LD_LIBRARY_PATH.
    fix = tmp_path / "opt" / "shipyard" / "lib"
    fix.mkdir(parents=True)
    (fix / SONAME).symlink_to(lib64 / "libdevmapper.so.1.02")
    env = {**os.environ, "LD_LIBRARY_PATH": str(fix)}
    run = subprocess.run([in_host, agent], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    doc = run_doctor(
        "check",
        "--json",
        "--only",
        "agent-libs",
        config=config,
        python=str(python),
        env={"LD_LIBRARY_PATH": str(fix)},
    )
    check = doc.check("agent-libs")
    assert check["status"] == "ok", check
    assert f"{SONAME} => {fix}/{SONAME} (LD_LIBRARY_PATH)" in check["details"]


def test_library_found_by_runpath_or_lib_dirs_is_ok(coreos_like, tmp_path):
    in_host, python = coreos_like
    agent = _agent(tmp_path, SONAME, "--set-rpath", "$ORIGIN/../lib")
    (tmp_path / "lib").mkdir()
    shutil.copy(LIBZ, tmp_path / "lib" / SONAME)
    run = subprocess.run([in_host, agent], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr  # the real loader agrees
    doc = run_doctor(
        "check",
        "--json",
        "--only",
        "agent-libs",
        python=str(python),
        config=_config(tmp_path, agent, []),
    )
    check = doc.check("agent-libs")
    assert check["status"] == "ok" and doc.code == 0, check
    assert check["summary"].startswith("shipyard-agent finds all ")
    assert (
        f"{SONAME} => {agent.parent}/../lib/{SONAME} (DT_RUNPATH of {agent})"
        in check["details"]
    )

    plain = tmp_path / "plain"
    plain.mkdir()
    agent2 = _agent(plain, SONAME)
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(LIBZ, extra / SONAME)
    doc = run_doctor(
        "check",
        "--json",
        "--only",
        "agent-libs",
        python=str(python),
        config=_config(plain, agent2, [extra]),
    )
    check = doc.check("agent-libs")
    assert check["status"] == "ok", check
    assert f"{SONAME} => {extra}/{SONAME} ([host] lib_dirs)" in check["details"]


def test_upstream_soname_on_debian_finds_debian_name(require_infra, tmp_path):
    # The reverse of the story (sameersbn/docker-gitlab#219): built against upstream's
    # libdevmapper.so.1.02, run on Debian, which ships libdevmapper.so.1.02.1.
    require_infra()
    debian = f"/lib/x86_64-linux-gnu/{SONAME}"
    with infra_setup():
        if not os.path.exists(debian):
            raise InfraMissing(f"{debian} missing: apt-get install libdevmapper1.02.1")
    agent = _agent(tmp_path, "libdevmapper.so.1.02")
    run = subprocess.run([agent], capture_output=True, text=True)
    assert "libdevmapper.so.1.02: cannot open shared object file" in run.stderr
    doc = run_doctor(
        "check", "--json", "--only", "agent-libs", config=_config(tmp_path, agent, [])
    )
    check = doc.check("agent-libs")
    assert check["status"] == "failure"
    assert check["summary"] == (
        "shipyard-agent cannot start: libdevmapper.so.1.02 is not installed "
        f"(closest: {debian})"
    )


@pytest.fixture
def python_without_opt_shipyard(require_infra, tmp_path) -> str:
    """A python that runs the doctor in a private mount namespace where
    /opt/shipyard (if this machine has one) is an empty tmpfs: a host with no
    shipyard-agent there, whatever this machine has."""
    require_infra("unshare", "mount")
    hide = (
        "mount -t tmpfs tmpfs /opt/shipyard && "
        if os.path.isdir("/opt/shipyard")
        else ""
    )
    python = tmp_path / "python-no-opt-shipyard"
    python.write_text(
        "#!/bin/sh\n"
        "exec unshare --mount --propagation private sh -c "
        f'\'{hide}exec {sys.executable} "$@"\' sh "$@"\n'
    )
    python.chmod(0o755)
    return str(python)


def test_no_agent_is_skipped_and_static_or_script_agents_need_nothing(
    tmp_path, python_without_opt_shipyard, require_infra
):
    require_infra("busybox")  # busybox-static: no dynamic section at all
    doc = run_doctor(
        "check", "--json", "--only", "agent-libs", python=python_without_opt_shipyard
    )
    check = doc.check("agent-libs")
    assert check["status"] == "skipped"
    assert check["summary"].startswith("no shipyard-agent binary (not on $PATH")

    busybox = shutil.which("busybox")
    assert busybox is not None
    doc = run_doctor(
        "check",
        "--json",
        "--only",
        "agent-libs",
        config=_config(tmp_path, Path(busybox), []),
    )
    assert doc.check("agent-libs")["summary"] == (
        "busybox is statically linked: it needs no shared libraries"
    )
    script = tmp_path / "shipyard-agent"
    script.write_text("#!/bin/sh\nexec docker run shipyard/agent\n")
    doc = run_doctor(
        "check", "--json", "--only", "agent-libs", config=_config(tmp_path, script, [])
    )
    check = doc.check("agent-libs")
    assert check["status"] == "skipped"
    assert check["summary"] == (
        f"{script}: not an ELF file: no shared libraries to resolve"
    )
