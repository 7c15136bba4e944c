"""Commands in hints, as the user at this host must type them.

The one place a check asks "how do I tell this user to start Docker?": ``sudo`` only
when the doctor does not already run as root, and the service manager that runs
Docker here, as host/manager.py finds it (systemd, the snap, a rootless user unit,
SysV ``service``, OpenRC, or a dockerd started by hand).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard_doctor.host.daemonconf import DEFAULT_CONFIG_FILE
from shipyard_doctor.host.manager import Kind

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host


def as_admin(host: Host, command: str) -> str:
    """``command`` prefixed with ``sudo`` unless the doctor already runs as root."""
    return command if host.is_root else f"sudo {command}"


def docker_service(host: Host, action: str = "start") -> str:
    """The command that starts (``action`` = start) or restarts Docker here, through
    the manager that runs it (host/manager.py)."""
    found = host.docker_manager()
    if action == "restart":
        commands = found.restart_commands()
        if not commands:
            return "stop the dockerd process and start it again the way it was started"
        return " && ".join(as_admin(host, shlex.join(argv)) for argv in commands)
    command = found.start_command(host.is_root)
    if found.kind in (Kind.MANUAL, Kind.NONE) and not found.argv:
        # No service would start it: the daemon itself, in the background.
        conf = host.config.docker.daemon_json
        flag = "" if conf == DEFAULT_CONFIG_FILE else f" --config-file {conf}"
        command += f"{flag} > /var/log/docker.log 2>&1 &"
    return command


def docker_reload(host: Host) -> str:
    """The command that makes the running dockerd reread daemon.json, through the
    manager that runs it (``sudo`` only when not root; a rootless unit: never)."""
    found = host.docker_manager()
    command = shlex.join(found.reload_command())
    return command if found.kind is Kind.SYSTEMD_USER else as_admin(host, command)


def docker_environment(host: Host, assignment: str) -> str:
    """How to give dockerd ``assignment`` (``NAME=value``) in its environment and
    restart it, where the manager that runs it keeps that environment."""
    found = host.docker_manager()
    unit = found.unit or "docker.service"
    match found.kind:
        case Kind.SYSTEMD | Kind.SNAP:
            how = f"{as_admin(host, f'systemctl edit {unit}')}: [Service] Environment="
        case Kind.SYSTEMD_USER:
            how = f"systemctl --user edit {unit}: [Service] Environment="
        case Kind.SYSVINIT:
            how = "in /etc/default/docker: export "
        case Kind.OPENRC:
            how = "in /etc/conf.d/docker: export "
        case _:  # started by hand: the same command line, with the variable
            command = as_admin(
                host, f"{assignment} {shlex.join(found.argv or ('dockerd',))}"
            )
            return (
                f"set {assignment} in dockerd's environment: stop dockerd and start "
                f"it again as {command}"
            )
    restart = docker_service(host, "restart")
    return (
        f"set {assignment} in dockerd's environment ({how}{assignment}; then {restart})"
    )


def stop_daemons(host: Host, pids: Sequence[int]) -> str:
    """How to stop the dockerd processes of ``pids`` that nobody meant to start:
    by pid, all but the one the service manager runs (it would only start it
    again)."""
    found = host.docker_manager()
    managed = found.kind not in (Kind.MANUAL, Kind.NONE) and found.pid in pids
    kills = [
        as_admin(host, f"kill {pid}") for pid in pids if not managed or pid != found.pid
    ]
    kept = f"; pid {found.pid} is the one {found.kind} runs" if managed else ""
    return " or ".join(kills) + kept


def start_hints(host: Host) -> list[str]:
    """How to get a Docker that is not running going, first things first."""
    from shipyard_doctor.host.dockerlog import START_LIMIT_HINT
    from shipyard_doctor.host.manager import start_limit_hit

    hints = [f"start Docker: {docker_service(host, 'start')}"]
    if start_limit_hit(host):
        hints.insert(0, START_LIMIT_HINT)
    if host.dockerd_processes():
        hints.insert(
            0,
            "a dockerd is running but not at this endpoint: point --docker-host or "
            "[docker] host at the socket it serves (see its -H flags above)",
        )
    return hints
