"""What runs as PID 1, as far as starting services goes: systemd only when it really
is init (``<run>/systemd/system`` exists, sd_booted(3), and ``/proc/1/comm`` says
so), OpenRC, sysvinit-style ``service``, or nothing. Paths come from ``[host]
proc_dir, run_dir``. Its own module so that both the unit files (systemd.py, which
asks before calling systemctl) and the Docker manager (manager.py, which reads unit
files) can use it without importing each other."""

from __future__ import annotations

import enum
from pathlib import Path


class Init(enum.StrEnum):
    """What runs as PID 1, as far as starting services goes."""

    SYSTEMD = "systemd"
    SYSVINIT = "sysvinit"  # also busybox init and WSL's /init: `service` works there
    OPENRC = "openrc"
    NONE = "none"  # a container's entrypoint, a shell: no service manager


def detect_init(proc_dir: str, run_dir: str) -> tuple[Init, str]:
    """What runs as PID 1, and the evidence line."""
    try:
        comm = (Path(proc_dir) / "1" / "comm").read_text(errors="replace").strip()
    except OSError:
        comm = ""
    booted = (Path(run_dir) / "systemd" / "system").is_dir()
    seen = f"PID 1 is {comm or '?'}"
    if comm == "systemd" and booted:
        return Init.SYSTEMD, f"{seen} and {run_dir}/systemd/system exists"
    if comm == "openrc-init" or (Path(run_dir) / "openrc").is_dir():
        return Init.OPENRC, f"{seen}; OpenRC runs ({run_dir}/openrc)"
    if comm == "init":
        return Init.SYSVINIT, f"{seen} (sysvinit, busybox or WSL init: `service`)"
    return Init.NONE, f"{seen}: no service manager"
