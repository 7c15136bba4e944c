"""Restarting dockerd "the configured way", for the fixes that need a restart.

Changed API addresses ("hosts" is not reloadable, moby daemon/reload.go) and flushed
iptables rules (Docker recreates its chains only at start) both need dockerd to
start again. How depends on the host: ``[docker] restart_command`` when the user
named one (a host without systemd, a test daemon), else through the manager that
really runs dockerd (systemctl when systemd is PID 1 and runs docker.service, the
init script under sysvinit or OpenRC); for a dockerd started by hand, a fix says
what to run by hand instead of guessing. A restart stops every running container
unless live-restore is on ("By default, when the Docker daemon terminates, it
shuts down running containers", docs.docker.com engine/daemon/live-restore), so the
risk says which.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from shipyard_doctor.host import daemonconf, manager
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.daemonconf import DaemonSetup
    from shipyard_doctor.host.gateway import Host

Argv = tuple[str, ...]


@record
class Restart:
    """How dockerd is restarted here: the commands, and where that came from."""

    commands: tuple[Argv, ...]  # empty: no way to restart it from here
    how: str  # evidence: which way was chosen and why
    systemd: bool = False  # systemctl commands (socket units can be started too)

    @property
    def possible(self) -> bool:
        return bool(self.commands)

    @property
    def as_one_command(self) -> Argv:
        """All the commands as one argv, for an undo that must restart dockerd."""
        if len(self.commands) == 1:
            return self.commands[0]
        return ("sh", "-c", " && ".join(shlex.join(argv) for argv in self.commands))


SYSTEMCTL_RESTART: tuple[Argv, ...] = (
    ("systemctl", "daemon-reload"),
    ("systemctl", "restart", "docker.service"),
)
BY_HAND = (
    "restart dockerd the way it is started on this host (systemctl restart docker, "
    "service docker restart, or stop and start the dockerd process), or set "
    "[docker] restart_command so the doctor can do it"
)


def dockerd_restart(host: Host) -> Restart:
    """``[docker] restart_command`` first (the user said so), then the manager that
    runs dockerd (doctor/host/manager.py): systemd only when it is PID 1 and runs
    docker.service (``reset-failed`` first when its start limit was hit), the init
    script under sysvinit or OpenRC; a dockerd started by hand has no way (the
    caller explains)."""
    command = host.config.docker.restart_command
    if command:
        return Restart((("sh", "-c", command),), f"[docker] restart_command: {command}")
    found = host.docker_manager()
    commands = found.restart_commands(reset_failed=manager.start_limit_hit(host))
    if commands:
        return Restart(commands, found.describe(), found.systemd)
    return Restart((), f"{found.describe()}, and [docker] restart_command is not set")


def live_restore(setup: DaemonSetup | None) -> bool:
    """Whether running containers survive a restart: --live-restore on the command
    line or ``"live-restore": true`` in daemon.json."""
    if setup is None:
        return False
    flags = [a for a in setup.argv[1:] if a.startswith("--live-restore")]
    if flags:
        return flags[-1] in ("--live-restore", "--live-restore=true")
    return (setup.daemon_json.content or {}).get("live-restore") is True


def restart_risk(host: Host, setup: DaemonSetup | None) -> str:
    """The risk line of a plan that restarts dockerd."""
    running = len([c for c in host.containers() or () if c.state == "running"])
    now = {0: "none is running now", 1: "1 is running"}.get(
        running, f"{running} are running"
    )
    path = setup.daemon_json.path if setup else daemonconf.DEFAULT_CONFIG_FILE
    if live_restore(setup):
        return (
            f"restarts dockerd; live-restore is on ({path}), so running containers "
            f"keep running ({now}); the API is down for a few seconds"
        )
    return (
        f"restarts dockerd, which STOPS every running container ({now}): "
        f"live-restore is off in {path}; to keep them running, first add "
        '"live-restore": true there and reload Docker (systemctl reload docker, or '
        "kill -HUP the dockerd pid)"
    )
