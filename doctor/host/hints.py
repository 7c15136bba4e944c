"""Commands in hints, as the user at this host must type them.

The one place a check asks "how do I tell this user to start Docker?": ``sudo`` only
when the doctor does not already run as root, and the service manager that runs
Docker here. Which manager that is (systemd, OpenRC, runit, a dockerd started by hand
in a namespace) is the business of the service-manager knowledge (host/manager.py);
until that answers, systemd when it is the init system, else SysV ``service``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.host import systemd

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host


def as_admin(host: Host, command: str) -> str:
    """``command`` prefixed with ``sudo`` unless the doctor already runs as root."""
    return command if host.is_root else f"sudo {command}"


def docker_service(host: Host, action: str = "start") -> str:
    """The command that starts (``action`` = start, restart, stop) Docker here."""
    if systemd.systemd_running():
        return as_admin(host, f"systemctl {action} docker")
    return as_admin(host, f"service docker {action}")
