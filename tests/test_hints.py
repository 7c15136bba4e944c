"""Hints fit the host they are printed on: ``sudo`` only when the doctor does not run
as root. Real runs in a test network namespace (no dockerd in it) against a socket
that does not exist, as root and as user nobody."""

from __future__ import annotations

import os
from pathlib import Path

from doctor_cli import run_doctor

# How Docker is started here, until the service-manager knowledge (host/manager.py)
# says more: systemd when it is the init system (sd_booted), else SysV service.
START = (
    "systemctl start docker"
    if Path("/run/systemd/system").is_dir()
    else "service docker start"
)


def missing_socket() -> str:
    # Under /tmp itself so that user nobody can look and see it is not there.
    return f"unix:///tmp/sd-hints-{os.getpid()}-missing.sock"


def start_hint(**kw) -> str:
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        missing_socket(),
        **kw,
    )
    check = run.check("docker-daemon")
    assert check["status"] == "failure", check
    (hint,) = [h for h in check["hints"] if h.startswith("start Docker: ")]
    return hint


def test_root_is_not_told_to_use_sudo(netns):
    assert start_hint(netns=netns) == f"start Docker: {START}"


def test_an_unprivileged_user_is_told_to_use_sudo(netns, unprivileged_venv):
    python = str(unprivileged_venv / "bin" / "python")
    hint = start_hint(netns=netns, python=python, as_nobody=True)
    assert hint == f"start Docker: sudo {START}"
