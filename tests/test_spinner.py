"""The spinner: on a terminal, once a check takes over half a second, it names the
checks still running; it never reaches plain or JSON output. A real slow check:
docker-daemon against a socket that accepts and never answers ([docker] timeout 2 s),
run on a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

SPINNER = "running 2 of 2 checks: docker-daemon, docker-state"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "TERM": "xterm-256color",
    "COLUMNS": "120",
}


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("[docker]\ntimeout = 2.0\n")
    return path


def argv(url: str, cfg: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "shipyard_doctor",
        "check",
        "--only",
        "docker-state",  # and docker-daemon, which it requires
        "--docker-host",
        url,
        "--config",
        str(cfg),
        *extra,
    ]


def on_a_terminal(command: list[str], timeout: float = 60) -> str:
    """Run ``command`` with stdin, stdout and stderr on a new pty; all it drew."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        child = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=ENV
        )
    finally:
        os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child and its terminal are gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        child.kill() if child.poll() is None else None
        child.wait()
    return b"".join(chunks).decode("utf-8", "replace")


def test_spinner_names_the_checks_still_running_on_a_terminal(hanging_socket, tmp_path):
    drawn = on_a_terminal(argv(hanging_socket.url, config(tmp_path)))
    assert SPINNER in drawn, drawn[-2000:]
    # The report itself follows, and the spinner was erased (transient).
    report = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.rsplit(SPINNER, 1)[1])
    assert "Docker daemon answers (docker-daemon): the Docker daemon at" in report
    assert "2 checks: 1 skipped, 1 error" in report


def test_no_spinner_in_plain_or_json_output(hanging_socket, tmp_path):
    cfg = config(tmp_path)
    for extra in ((), ("--json",)):
        done = subprocess.run(
            argv(hanging_socket.url, cfg, *extra),
            capture_output=True,
            text=True,
            env=ENV,  # no NO_COLOR: plain only because these are pipes
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        for stream in (done.stdout, done.stderr):
            assert "running " not in stream and "\x1b" not in stream, stream
    # NO_COLOR on a terminal is plain output: no spinner either.
    drawn = on_a_terminal(["env", "NO_COLOR=1", *argv(hanging_socket.url, cfg)])
    assert "running " not in drawn and "\x1b" not in drawn
    assert "ERROR    docker-daemon: the Docker daemon at" in drawn


def test_no_spinner_when_every_check_is_quick(tmp_path):
    cfg = config(tmp_path)
    quick = [sys.executable, "-m", "shipyard_doctor", "check", "--only", "nat-vbox"]
    drawn = on_a_terminal([*quick, "--config", str(cfg)])
    assert "nat-vbox" in drawn and "running " not in drawn
