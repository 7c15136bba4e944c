"""The ways to put Docker's API on TCP on this host, as exact file contents.

A systemd drop-in, a CoreOS-style docker-tcp.socket, or daemon.json "hosts": which fit
depends on how dockerd is started here (see daemonconf). The docker-tcp check shows
them as hints; a fix can apply the same steps.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import TYPE_CHECKING

from shipyard_doctor.host.daemonconf import DaemonSetup, UnitSetup, setup_from_argv
from shipyard_doctor.host.manager import systemd_runs_docker
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host


@record
class Route:
    """One way to make dockerd listen on TCP: the file to write and how to apply."""

    kind: str  # drop-in | socket | daemon.json
    path: str
    content: str
    fits: bool
    why: str
    apply: str

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": self.path,
            "content": self.content,
            "fits": self.fits,
            "why": self.why,
            "apply": self.apply,
        }


DROPIN_NAME = "shipyard-doctor.conf"  # in <first [host] systemd_dirs>/docker.service.d
SOCKET_NAME = "docker-tcp.socket"  # the name CoreOS documented
SYSTEMD_RESTART = "systemctl daemon-reload && systemctl restart docker"


def tcp_routes(host: Host, running: DaemonSetup | None, unit: UnitSetup) -> list[Route]:
    """The ways to add ``[docker] tcp`` to dockerd's addresses on this host, the one
    that fits first (docs.docker.com engine/daemon/remote-access: pick ONE)."""
    tcp = f"tcp://{host.config.docker.tcp}"
    units = host.config.host.systemd_dirs[0]  # /etc/systemd/system by default
    # A unit file only counts when systemd really runs dockerd from it (issue 8):
    # a hand-started dockerd next to an installed docker.service has its own
    # command line and --config-file.
    systemd_runs = systemd_runs_docker(host)
    setup = (
        (unit.setup if systemd_runs else None)
        or running
        or setup_from_argv("dockerd's defaults", (), host.config.docker.daemon_json)
    )
    routes: list[Route] = []
    if systemd_runs and unit.setup is not None and unit.exec_start is not None:
        flags = bool(unit.setup.flags.hosts)
        routes.append(
            Route(
                "drop-in",
                os.path.join(units, "docker.service.d", DROPIN_NAME),
                f"[Service]\nExecStart=\nExecStart={unit.exec_start} -H {tcp}\n",
                flags and not unit.setup.daemon_json.hosts,
                f"systemd starts dockerd from {unit.unit.fragment} with -H flags; a "
                "drop-in keeps the vendor unit and survives package updates"
                if flags
                else f'{unit.setup.daemon_json.path} sets "hosts"; -H in the unit '
                "too would stop dockerd from starting",
                SYSTEMD_RESTART,
            )
        )
        if "fd://" in unit.setup.flags.hosts:
            routes.append(
                Route(
                    "socket",
                    os.path.join(units, SOCKET_NAME),
                    # As CoreOS documented it; BindIPv6Only=both: one socket for
                    # IPv4 and IPv6 where it binds [::].
                    "[Unit]\nDescription=Docker API on TCP for the Shipyard agent\n\n"
                    f"[Socket]\nListenStream={host.config.docker.tcp}\n"
                    "Service=docker.service\nBindIPv6Only=both\n\n"
                    "[Install]\nWantedBy=sockets.target\n",
                    True,
                    "dockerd takes its sockets from systemd (-H fd://): the "
                    "CoreOS/Flatcar way, no copy of the unit",
                    "systemctl enable docker-tcp.socket && systemctl stop docker && "
                    "systemctl start docker-tcp.socket && systemctl start docker",
                )
            )
    content = dict(setup.daemon_json.content or {})
    content["hosts"] = list(dict.fromkeys([*setup.hosts, tcp]))
    manager = host.docker_manager().restart_commands()
    restart = (
        SYSTEMD_RESTART
        if systemd_runs
        else host.config.docker.restart_command
        or " && ".join(shlex.join(argv) for argv in manager)
        or "restart dockerd"
    )
    routes.append(
        Route(
            "daemon.json",
            setup.daemon_json.path,
            json.dumps(content, indent=2) + "\n",
            not setup.flags.hosts,
            'dockerd has no -H on its command line, so daemon.json "hosts" is where '
            "its addresses go"
            if not setup.flags.hosts
            else f"{setup.origin} passes -H {' -H '.join(setup.flags.hosts)}; "
            '"hosts" in daemon.json too would stop dockerd from starting',
            restart,
        )
    )
    return sorted(routes, key=lambda r: not r.fits)
