"""The Docker API on TCP (``[docker] tcp``): does it answer, how dockerd is told to
listen, and is it open beyond loopback without TLS verification.

:func:`tcp_evidence` gathers it; the check docker-tcp words the verdict and the fix
docker-tcp reads :class:`TcpEvidence` by its fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host import daemonconf, manager, systemd, tcproutes
from shipyard_doctor.host.dockerapi import DockerProbe, Problem
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.daemonconf import DaemonSetup, UnitSetup
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.tcproutes import Route

#: The first step when the API is exposed (the check's hint, the fix's manual step).
BIND_LOOPBACK = (
    "bind the API to 127.0.0.1 only (-H tcp://127.0.0.1:4243, or "
    "ListenStream=127.0.0.1:4243 in a socket unit), or require client "
    "certificates: --tlsverify with --tlscacert/--tlscert/--tlskey "
    "(https://docs.docker.com/engine/security/protect-access/)"
)


class TcpState(StrEnum):
    EXPOSED = "exposed"  # open beyond loopback without TLS verification
    CONFLICT = "conflict"  # -H and "hosts": dockerd will not start again
    ANSWERS = "answers"
    NOT_DOCKER = "not-docker"  # something else answers there
    NOT_LISTENING = "not-listening"


@record
class TcpEvidence:
    """What docker-tcp found; ``routes`` (the ways to add the address) only when the
    API does not answer."""

    tcp: str  # tcp://HOST:PORT
    answers: bool
    problem: Problem | None
    running: tuple[str, ...] | None  # the running dockerd's argv
    hosts: tuple[str, ...] | None  # its effective hosts
    exposures: tuple[str, ...]  # "ADDRESS (from SOURCE)"
    conflict: str | None  # what dockerd would say at its next start
    routes: tuple[Route, ...] = ()

    @property
    def state(self) -> TcpState:
        if self.exposures:
            return TcpState.EXPOSED
        if self.conflict:
            return TcpState.CONFLICT
        if self.answers:
            return TcpState.ANSWERS
        if self.problem is Problem.NOT_DOCKER:
            return TcpState.NOT_DOCKER
        return TcpState.NOT_LISTENING

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "tcp": self.tcp,
            "answers": self.answers,
            "problem": self.problem.value if self.problem else None,
            "running": list(self.running) if self.running is not None else None,
            "hosts": list(self.hosts) if self.hosts is not None else None,
            "exposures": list(self.exposures),
            "conflict": self.conflict,
        }
        if self.state is TcpState.NOT_LISTENING:
            data["routes"] = [r.to_dict() for r in self.routes]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TcpEvidence:
        """Read back from a result's JSON ``data`` (a saved report); routes are not:
        the fix works them out again."""
        problem = data.get("problem")
        running, hosts = data.get("running"), data.get("hosts")
        return cls(
            tcp=str(data.get("tcp", "")),
            answers=bool(data.get("answers")),
            problem=Problem(problem) if problem else None,
            running=tuple(running) if running is not None else None,
            hosts=tuple(hosts) if hosts is not None else None,
            exposures=tuple(data.get("exposures") or ()),
            conflict=data.get("conflict") or None,
        )


def tcp_evidence(
    host: Host, probe: DockerProbe, running: DaemonSetup | None, unit: UnitSetup
) -> TcpEvidence:
    upcoming = manager.managed_setup(host)  # what the next start will run
    found = TcpEvidence(
        tcp=probe.endpoint.url,
        answers=probe.ok,
        problem=probe.problem,
        running=running.argv if running else None,
        hosts=running.hosts if running else None,
        exposures=tuple(daemonconf.exposures(host, running, unit)),
        conflict=upcoming.conflict if upcoming is not None else None,
    )
    if found.state is not TcpState.NOT_LISTENING:
        return found
    routes = tuple(tcproutes.tcp_routes(host, running, unit))
    return TcpEvidence(**{**found.__dict__, "routes": routes})


def describe_setup(
    host: Host, running: DaemonSetup | None, unit: UnitSetup
) -> list[str]:
    """How dockerd is told to listen, one line per source, and what listens now."""
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
