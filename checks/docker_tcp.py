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

from shipyard_doctor.host import daemonconf, dockerlog, manager, systemd, tcproutes
from shipyard_doctor.host.daemonconf import DaemonSetup, UnitSetup
from shipyard_doctor.host.dockerapi import Problem
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.tcproutes import Route
from shipyard_doctor.model import Check, Result

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
        tcp = daemonconf.tcp_probe(host)
        url = tcp.endpoint.url
        running = daemonconf.running_setup(host)
        unit = daemonconf.unit_setup(host)
        state = (
            f"OK (Docker {tcp.version.get('Version', '?')})"
            if tcp.ok
            else (f"{tcp.problem.value if tcp.problem else '?'}: {tcp.reason}")
        )
        details = [f"probe: GET {url}/_ping: {state}", *_evidence(host, running, unit)]
        exposed = daemonconf.exposures(host, running, unit)
        upcoming = manager.managed_setup(host)  # what the next start will run
        data: dict[str, object] = {
            "tcp": url,
            "answers": tcp.ok,
            "problem": tcp.problem.value if tcp.problem else None,
            "running": list(running.argv) if running else None,
            "hosts": list(running.hosts) if running else None,
            "exposures": exposed,
            "conflict": upcoming.conflict if upcoming is not None else None,
        }
        if exposed:
            return Result.failure(
                f"the Docker API is open on {exposed[0].split()[0]} without TLS "
                "verification: anyone who can reach it is root on this host",
                details=details + [f"exposed: {e}" for e in exposed],
                hints=[
                    "bind the API to 127.0.0.1 only (-H tcp://127.0.0.1:4243, or "
                    "ListenStream=127.0.0.1:4243 in a socket unit), or require client "
                    "certificates: --tlsverify with --tlscacert/--tlscert/--tlskey "
                    "(https://docs.docker.com/engine/security/protect-access/)",
                    AGENT_HINT,
                ],
                data=data,
            )
        if upcoming is not None and upcoming.conflict:
            file = upcoming.daemon_json.path
            _, hints = dockerlog.explain(
                "hosts-flag-and-file", file=file, dockerd=upcoming.argv[0]
            )
            return Result.failure(
                f'dockerd will not start again: -H in {upcoming.origin} and "hosts" '
                f"in {file} conflict",
                details=[*details, f"dockerd would say: {upcoming.conflict}"],
                hints=hints,
                data=data,
            )
        if tcp.ok:
            version = tcp.version.get("Version", "?")
            return Result.ok(
                f"Docker {version} answers on {url}", details=details, data=data
            )
        if tcp.problem is Problem.NOT_DOCKER:
            return Result.failure(
                f"{url} answers, but it is not the Docker API",
                details=details,
                hints=[
                    "something else holds that port (ss -ltnp); point [docker] "
                    "tcp at the address the Shipyard agent's -docker flag uses"
                ],
                data=data,
            )
        routes = tcproutes.tcp_routes(host, running, unit)
        data["routes"] = [r.to_dict() for r in routes]
        why = _why_not(tcp.endpoint.port, running)
        return Result.failure(
            f"Docker API does not answer on {url} ({why})",
            details=details,
            hints=[*(_route_hint(r) for r in routes), AGENT_HINT],
            data=data,
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


def _evidence(host: Host, running: DaemonSetup | None, unit: UnitSetup) -> list[str]:
    lines = []
    for setup in (running, unit.setup):
        if setup is None:
            continue
        dj = setup.daemon_json
        flags = " ".join(f"-H {h}" for h in setup.flags.hosts) or "no -H flags"
        verify = "on" if setup.tlsverify else "off"
        lines.append(
            f"{setup.origin}: {flags}; daemon.json {dj.path}: {dj.describe()}; "
            f"TLS verification {verify}"
        )
    if running is None:
        lines.append("no running dockerd in this network namespace")
    lines.append(f"manager: {host.docker_manager().describe()}")
    if unit.unit.exists and not manager.systemd_runs_docker(host):
        lines.append(
            f"{unit.unit.name} is installed but does not run dockerd here: shown, "
            "never acted on"
        )
    lines.append(unit.unit.describe())
    if unit.exec_start:
        lines.append(f"ExecStart={unit.exec_start}")
    lines += [f"{unit.unit.name}: {note}" for note in unit.notes]
    lines += [
        f"{unit.unit.fragment} hides {p} (a full copy: later changes to the vendor "
        "unit are ignored)"
        for p in unit.unit.shadowed
    ]
    for sock in unit.sockets:
        listen = ", ".join(sock.values("Socket", "ListenStream")) or "nothing"
        enabled = "enabled" if sock.enabled_in else "not enabled"
        lines.append(f"{sock.describe()}: ListenStream={listen} ({enabled})")
    view = systemd.manager_view(host)
    if view is not None:
        lines.append(
            f"systemd: FragmentPath={view.fragment} DropInPaths="
            f"{' '.join(view.dropins) or '-'} TriggeredBy="
            f"{' '.join(view.triggered_by) or '-'} ({view.active})"
        )
        if view.need_reload:
            lines.append(
                "systemd has not loaded the changed unit files: run "
                "systemctl daemon-reload"
            )
    for item, owner in daemonconf.api_listeners(host):
        lines.append(f"listening: {owner.describe()} on {item.endpoint}")
    return lines
