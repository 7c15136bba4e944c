"""docker-tcp fix: make dockerd also listen on ``[docker] tcp`` (127.0.0.1:4243).

The route follows how dockerd is started here (doctor/tcproutes.py has the exact
file contents): under systemd a drop-in that repeats the unit's ExecStart with
``-H tcp://…`` added (fd:// or the unix socket kept), or, where the host already
hands dockerd a TCP socket through a socket unit (CoreOS's docker-tcp.socket),
that socket bound to loopback; without -H flags, daemon.json "hosts" with the unix
socket kept. Then dockerd is restarted the configured way (doctor/restart.py).
Refused, with the reason: -H flags and "hosts" together (dockerd would not start),
an address beyond loopback without TLS certificates, an API that is already exposed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shipyard_doctor.fixing import (
    Fix,
    FixOptions,
    Plan,
    RunCommand,
    Step,
    Symlink,
    WriteFile,
)

if TYPE_CHECKING:
    from shipyard_doctor.fixengine import restart
    from shipyard_doctor.host.daemonconf import DaemonSetup, UnitSetup
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.tcproutes import Route
    from shipyard_doctor.model import Result

# A Go string constant sits among the binary's other strings with no separator:
# only digits and dots around it end the match (agent.go: const VERSION = "0.3.1").
NO_TCP_SINCE = (0, 3, 0)  # agent d2b3d8a (2014-04-21): -docker /var/run/docker.sock


class DockerTcpFix(Fix):
    id = "docker-tcp"
    title = "Make dockerd listen on TCP for the Shipyard agent"
    repairs = ("docker-tcp",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.fixengine import restart
        from shipyard_doctor.host import daemonconf, manager
        from shipyard_doctor.host.dockerapi import parse_endpoint, probe
        from shipyard_doctor.host.tcpapi import BIND_LOOPBACK, TcpEvidence, TcpState

        found = result.evidence
        if not isinstance(found, TcpEvidence):
            found = TcpEvidence.from_data(result.data)
        url = f"tcp://{host.config.docker.tcp}"
        notes = (agent_note(host),)

        def refuse(summary: str, *manual: str) -> Plan:
            return Plan(self.id, "docker-tcp", summary, notes=notes, manual=manual)

        match found.state:
            case TcpState.EXPOSED:
                return refuse(
                    "not changed: the Docker API is already open beyond loopback "
                    "without TLS verification; close that first (the check's hints "
                    "say how)",
                    BIND_LOOPBACK,
                )
            case TcpState.CONFLICT:
                return refuse(
                    f"refused: {found.conflict}; remove one of the two first "
                    "(the check's hints say how)"
                )
            case TcpState.ANSWERS:
                return refuse(f"nothing to do: Docker answers on {url}")
            case TcpState.NOT_DOCKER:
                return refuse(
                    f"refused: something that is not Docker holds {url}; free the "
                    "port (ss -ltnp) or point [docker] tcp elsewhere"
                )
        running = daemonconf.running_setup(host)
        unit = daemonconf.unit_setup(host)
        setup = manager.managed_setup(host)
        if setup is None:
            return refuse(
                "refused: no dockerd runs here and no service manager would start "
                f"one from a unit ({host.docker_manager().describe()}): start Docker "
                "first (see docker-daemon)"
            )
        address = daemonconf.parse_api_address(url)
        if not address.loopback and not tls_material(setup):
            return refuse(
                f"refused: [docker] tcp = {host.config.docker.tcp} is not a loopback "
                "address and dockerd has no TLS verification with certificates "
                "(tlsverify, tlscacert, tlscert, tlskey): anyone who can reach it "
                "would be root on this host"
            )
        how = restart.dockerd_restart(host)
        route = choose_route(host, running, unit, how)
        if route is None:
            return refuse(
                f"refused: {setup.origin} gets -H {' -H '.join(setup.flags.hosts)} on "
                "its command line and no docker.service starts it: add -H "
                f'{url} where it is started ("hosts" in daemon.json as well would '
                "stop it from starting)"
            )
        changes = route_steps(host, route, setup, address.url)
        what = ", ".join(step.describe() for step in changes) or (
            f"{setup.daemon_json.path} already lists {url}"
        )
        if not how.possible:
            return refuse(
                f"not applied: {how.how}, so the doctor cannot restart dockerd to "
                f"make the change take effect ({what})",
                *by_hand(changes),
                restart.BY_HAND,
            )
        tcp = parse_endpoint(url)
        timeout, api = host.docker_timeout, host.config.docker.min_api_version

        def answers() -> bool:
            return probe(tcp, timeout, api).ok

        commands = restart_commands(route, how)
        restarts = [
            RunCommand(
                argv,
                f"restart dockerd ({how.how})",
                done_when=answers,
                # After undo (or a rollback) restored the files: start from them.
                after_undo=undo_restart(route, how) if argv == commands[-1] else None,
            )
            for argv in commands
        ]
        return Plan(
            self.id,
            "docker-tcp",
            f"add {url} to dockerd's addresses through {route.kind} "
            f"({route.why}) and restart it",
            steps=(*changes, *restarts),
            risk=restart.restart_risk(host, setup),
            notes=(
                f"the Shipyard agent (<= v0.2.5) then reaches Docker at {url}",
                *notes,
            ),
        )


def choose_route(
    host: Host, running: DaemonSetup | None, unit: UnitSetup, how: restart.Restart
) -> Route | None:
    """The route that fits how dockerd is started on this host."""
    from shipyard_doctor.host import daemonconf, tcproutes

    routes = {r.kind: r for r in tcproutes.tcp_routes(host, running, unit)}
    tcp_sockets = [
        sock
        for sock in unit.sockets
        for spec in sock.values("Socket", "ListenStream")
        if daemonconf.parse_listen_stream(spec)[1] is not None
    ]
    # The host's own way: a TCP socket unit (CoreOS) already feeds dockerd fd://.
    if tcp_sockets and "socket" in routes and how.systemd:
        return routes["socket"]
    for kind in ("drop-in", "daemon.json"):
        if kind in routes and routes[kind].fits:
            return routes[kind]
    return None


def route_steps(host: Host, route: Route, setup: DaemonSetup, url: str) -> list[Step]:
    """The file changes of ``route``, written where [host] systemd_dirs says."""
    if any(a.url == url for a in setup.addresses()):
        return []  # configured already; only the restart is missing
    steps: list[Step] = [WriteFile(route.path, route.content)]
    if route.kind == "socket":
        first, name = os.path.split(route.path)
        wants = os.path.join(first, "sockets.target.wants", name)
        steps.append(Symlink(wants, route.path))
    return steps


def by_hand(steps: list[Step]) -> list[str]:
    """The file changes as instructions, for a plan that cannot apply them."""
    lines = []
    for step in steps:
        if isinstance(step, WriteFile):
            lines.append(f"write {step.path} with:\n{step.content}")
        elif isinstance(step, Symlink):
            lines.append(f"ln -s {step.target} {step.path}")
    return lines


def restart_commands(route: Route, how: restart.Restart) -> tuple[tuple[str, ...], ...]:
    if route.kind != "socket":
        return how.commands
    # The socket must be listening before dockerd starts, so that it is handed over;
    # restarted, not started: a running socket (CoreOS's own docker-tcp.socket, now
    # overridden in /etc) keeps its old address until it is stopped.
    name = os.path.basename(route.path)
    return (
        ("systemctl", "daemon-reload"),
        ("systemctl", "stop", "docker.service"),
        ("systemctl", "restart", name),
        ("systemctl", "start", "docker.service"),
    )


def undo_restart(route: Route, how: restart.Restart) -> tuple[str, ...]:
    if route.kind != "socket":
        return how.as_one_command
    # systemd keeps a removed socket unit listening until it is stopped; a vendor
    # unit of the same name (CoreOS) that the fix overrode listens again.
    name = os.path.basename(route.path)
    return (
        "sh",
        "-c",
        f"systemctl daemon-reload; systemctl stop docker.service; systemctl stop "
        f"{name}; if systemctl cat {name} >/dev/null 2>&1; then systemctl start "
        f"{name}; fi; systemctl start docker.service",
    )


def tls_material(setup: DaemonSetup) -> bool:
    """TLS verification on, with the CA, certificate and key named."""
    content = setup.daemon_json.content or {}
    flags = " ".join(setup.argv)
    return setup.tlsverify and all(
        content.get(key) or f"--{key}" in flags
        for key in ("tlscacert", "tlscert", "tlskey")
    )


def agent_note(host: Host) -> str:
    """Whether the agent found here needs TCP at all."""
    from shipyard_doctor.host.agent import agent_version, find_agent_binary

    path, origin = find_agent_binary(host)
    if path is None:
        return (
            "no shipyard-agent binary found: the agent container and agents v0.3.0+ "
            "use the unix socket and need no TCP"
        )
    version = agent_version(path)
    if version is None:
        return (
            f"shipyard-agent {path} ({origin}): version unknown (no single version "
            "string in the binary); agents <= v0.2.5 need TCP, v0.3.0+ do not"
        )
    if tuple(int(n) for n in version.split(".")) >= NO_TCP_SINCE:
        return (
            f"shipyard-agent {path} is {version}: it talks to the unix socket "
            "(-docker /var/run/docker.sock), so TCP is not needed at all"
        )
    return f"shipyard-agent {path} is {version}: it needs Docker on TCP"
