"""docker-tcp: does the Docker API answer on TCP where the Shipyard agent expects it?

shipyard-agent <= v0.2.5 proxies to ``http://127.0.0.1:4243`` and fails with "Error
connecting to Docker (is Docker listening on TCP?)"; the 2014 user had to edit the
CoreOS unit for it. The check probes ``[docker] tcp``, reports how dockerd is told to
listen (running command line, daemon.json, the systemd unit with drop-ins and
sockets), predicts the -H/"hosts" conflict that stops dockerd at its next start, and
fails on a TCP address beyond loopback without TLS verification: anyone who can
reach it is root on the host. Agents v0.3.0+ need no TCP at all.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.daemonconf import DaemonSetup
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.tcproutes import Route

AGENT_HINT = (
    "or skip TCP: shipyard-agent v0.3.0+ (and the shipyard/agent container) talk to "
    "the unix socket: -docker /var/run/docker.sock"
)


class DockerTcpCheck(Check):
    id = "docker-tcp"
    title = "Docker API on TCP for the Shipyard agent"
    category = "docker"
    presumes = ("docker-daemon",)  # no daemon, no API on TCP either

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host.daemonconf import running_setup, tcp_probe, unit_setup
        from shipyard_doctor.host.manager import managed_setup
        from shipyard_doctor.host.tcpapi import (
            BIND_LOOPBACK,
            TcpState,
            describe_setup,
            tcp_evidence,
        )

        tcp = tcp_probe(host)
        url = tcp.endpoint.url
        running = running_setup(host)
        unit = unit_setup(host)
        state = (
            f"OK (Docker {tcp.version.get('Version', '?')})"
            if tcp.ok
            else (f"{tcp.problem.value if tcp.problem else '?'}: {tcp.reason}")
        )
        details = [
            f"probe: GET {url}/_ping: {state}",
            *describe_setup(host, running, unit),
        ]
        found = tcp_evidence(host, tcp, running, unit)
        upcoming = managed_setup(host)
        match found.state:
            case TcpState.EXPOSED:
                return Result.failure(
                    f"the Docker API is open on {found.exposures[0].split()[0]} "
                    "without TLS verification: anyone who can reach it is root on "
                    "this host",
                    details=details + [f"exposed: {e}" for e in found.exposures],
                    hints=[BIND_LOOPBACK, AGENT_HINT],
                    evidence=found,
                )
            case TcpState.CONFLICT if upcoming is not None:
                from shipyard_doctor.host.dockerlog import explain

                file = upcoming.daemon_json.path
                _, hints = explain(
                    "hosts-flag-and-file", file=file, dockerd=upcoming.argv[0]
                )
                return Result.failure(
                    f"dockerd will not start again: -H in {upcoming.origin} and "
                    f'"hosts" in {file} conflict',
                    details=[*details, f"dockerd would say: {found.conflict}"],
                    hints=hints,
                    evidence=found,
                )
            case TcpState.ANSWERS:
                version = tcp.version.get("Version", "?")
                return Result.ok(
                    f"Docker {version} answers on {url}",
                    details=details,
                    evidence=found,
                )
            case TcpState.NOT_DOCKER:
                return Result.failure(
                    f"{url} answers, but it is not the Docker API",
                    details=details,
                    hints=[
                        "something else holds that port (ss -ltnp); point [docker] "
                        "tcp at the address the Shipyard agent's -docker flag uses"
                    ],
                    evidence=found,
                )
        why = _why_not(tcp.endpoint.port, running)
        return Result.failure(
            f"Docker API does not answer on {url} ({why})",
            details=details,
            hints=[*(_route_hint(r) for r in found.routes), AGENT_HINT],
            evidence=found,
        )


def _why_not(port: int, running: DaemonSetup | None) -> str:
    if running is None:
        return "no dockerd is running"
    tcp = [a.url for a in running.addresses() if a.scheme == "tcp"]
    if any(a.scheme == "tcp" and a.port == port for a in running.addresses()):
        return f"dockerd is told to listen on {', '.join(tcp)} but does not answer"
    if tcp:
        return f"the daemon listens on {', '.join(tcp)}, not on port {port}"
    return f"the daemon listens only on {', '.join(running.hosts)}"


def _route_hint(route: Route) -> str:
    if not route.fits:
        return f"{route.kind} route does not fit here: {route.why}"
    lines = " ".join(shlex.quote(line) for line in route.content.splitlines())
    return (
        f"{route.kind} route (fits: {route.why}): sudo mkdir -p "
        f"{os.path.dirname(route.path)} && printf '%s\\n' {lines} | sudo tee "
        f"{route.path}, then sudo sh -c '{route.apply}' (a restart stops containers "
        'unless "live-restore": true)'
    )
