"""Hints fit the host they are printed on: ``sudo`` only when the doctor does not run
as root. Real runs in a test network namespace (no dockerd in it) against a socket
that does not exist, as root and as user nobody."""

from __future__ import annotations

import os

from doctor_cli import run_doctor

# How Docker is started is host/manager.py's business (tests/test_manager.py and the
# systemd machine's tests pin it per manager); here only who types it matters.


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
    hint = start_hint(netns=netns)
    assert hint.startswith("start Docker: ") and "sudo" not in hint, hint


def test_an_unprivileged_user_is_told_to_use_sudo(netns, unprivileged_venv):
    python = str(unprivileged_venv / "bin" / "python")
    hint = start_hint(netns=netns, python=python, as_nobody=True)
    assert hint.startswith("start Docker: sudo "), hint
