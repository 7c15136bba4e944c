"""Run the installed doctor the way a user would: a real process, optionally inside a
test host's network namespace and as an unprivileged user."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import Netns

SETPRIV = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@dataclass
class DoctorRun:
    code: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def check(self, check_id: str) -> dict[str, Any]:
        for item in self.doc["checks"]:
            if item["id"] == check_id:
                return item
        raise KeyError(f"{check_id} not in {[c['id'] for c in self.doc['checks']]}")


def python_lines(code: str, *args: str, timeout: float = 60) -> list[str]:
    """Run *code* with this interpreter (``python -c``): it must exit 0 and print
    nothing on stderr; the lines it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.splitlines()


def run_doctor(
    *args: str,
    netns: Netns | None = None,
    config: Path | None = None,
    python: str = sys.executable,
    as_nobody: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> DoctorRun:
    argv = [python, "-m", "shipyard_doctor", *args]
    if config is not None:
        argv += ["--config", str(config)]
    if as_nobody:
        argv = [*SETPRIV, *argv]
    if netns is not None:
        argv = netns.nsenter_argv(argv)
    environ = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    started = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=environ, timeout=timeout, check=False
    )
    return DoctorRun(
        done.returncode, done.stdout, done.stderr, time.monotonic() - started
    )


def as_if_systemd_runs_docker(host: Any) -> Any:
    """*host* (a Host) planning as if systemd were PID 1 and ran docker.service.

    For the tests that plan systemd routes from recorded unit files (what the
    doctor would write, checked with systemd-analyze verify): here systemd is
    not PID 1. That those routes work for real is proven inside a booted
    systemd machine (test_systemd_machine.py)."""
    from shipyard_doctor.host.manager import DockerManager, Init, Kind

    manager = DockerManager(Kind.SYSTEMD, Init.SYSTEMD, False, unit="docker.service")
    host.memo("manager.docker", lambda: manager)
    return host


EXAMPLE_PLUGIN = Path(__file__).parent / "data" / "plugin-pkg"


def install_example_plugin(target: Path) -> Path:
    """pip-install the example third-party plugin package (tests/data/plugin-pkg)
    into *target* (for PYTHONPATH), built from a copy: setuptools builds in place and
    the repository stays clean."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as src:
        source = Path(src) / "plugin-pkg"
        shutil.copytree(EXAMPLE_PLUGIN, source)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--disable-pip-version-check",
                "--target",
                str(target),
                str(source),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    return target
