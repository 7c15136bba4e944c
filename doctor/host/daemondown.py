"""The docker-daemon evidence: the probe of the endpoint and, when no daemon runs,
why not: the known causes in its last log lines, else the -H/"hosts" conflict its
configuration predicts, else the log's last error lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard_doctor.host import daemonconf, manager
from shipyard_doctor.host.dockerapi import DockerProbe, Problem
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.daemonconf import DaemonSetup
    from shipyard_doctor.host.dockerlog import CauseMatch, DaemonLog
    from shipyard_doctor.host.gateway import Host, ProcessInfo

CONFLICT = "hosts-flag-and-file"


def describe_probe(
    probe: DockerProbe, origin: str, running: tuple[ProcessInfo, ...]
) -> list[str]:
    """The endpoint (and where it was configured), its socket, and the daemon's
    version or why it did not answer, with the dockerds that do run."""
    lines = [f"endpoint: {probe.endpoint.url} (from {origin})"]
    if probe.socket_info:
        lines.append(f"socket: {probe.socket_info} {probe.endpoint.path}")
    if probe.ok:
        v = probe.version
        lines.append(
            f"Docker {v.get('Version', '?')}, API {v.get('ApiVersion', '?')} "
            f"(minimum {v.get('MinAPIVersion', '?')}), {v.get('Os', '?')}/"
            f"{v.get('Arch', '?')}, answered in {probe.elapsed * 1000:.0f} ms"
        )
        return lines
    if probe.reason and probe.problem is not Problem.SOCKET_MISSING:
        lines.append(f"cause: {probe.reason}")
    return lines + [f"running: {p.describe()}" for p in running]


@record
class WhyDown:
    """Why no daemon runs: the known causes in its log, else the conflict its
    configuration predicts, else the log's last error lines."""

    log: DaemonLog
    matches: tuple[CauseMatch, ...]  # known causes in the last start attempt
    conflict: DaemonSetup | None  # a configuration dockerd refuses (no match)
    errors: tuple[str, ...]  # the log's last error lines (neither)

    def predicted(self) -> tuple[str, tuple[str, ...]]:
        """The explanation and hints of the conflict the configuration predicts."""
        from shipyard_doctor.host.dockerlog import explain

        setup = self.conflict
        if setup is None:
            return "", ()
        return explain(CONFLICT, file=setup.daemon_json.path, dockerd=setup.argv[0])

    def describe(self) -> list[str]:
        log = self.log
        if log.problem:
            lines = [f"log: {log.source}: {log.problem}"]
        else:
            lines = [f"log: last {len(log.lines)} lines of {log.source}"]
        for m in self.matches:
            lines += [f"log says: {m.line}", f"known cause: {m.explanation}"]
        if self.conflict is not None:
            lines += [
                f"configuration predicts: {self.conflict.conflict}",
                self.predicted()[0],
            ]
        return lines + [f"log says: {line}" for line in self.errors]

    def causes(self) -> list[dict[str, str]]:
        found = [{"id": m.cause.id, "line": m.line} for m in self.matches]
        return found + ([{"id": CONFLICT, "line": ""}] if self.conflict else [])


def why_down(host: Host) -> WhyDown:
    from shipyard_doctor.host import dockerlog  # only once the daemon is down

    log = dockerlog.daemon_log(host)
    fields = {
        "file": host.config.docker.daemon_json,
        "dockerd": host.find_binary("dockerd") or "/usr/bin/dockerd",
    }
    matches = tuple(
        dockerlog.drop_stale(
            dockerlog.known_causes(log.last_attempt(), fields), fields["file"]
        )
    )
    if matches:
        return WhyDown(log, matches, None, ())
    setup = manager.managed_setup(host) or daemonconf.unit_setup(host).setup
    if setup is not None and setup.conflict:
        return WhyDown(log, (), setup, ())
    errors = [ln for ln in log.last_attempt() if _looks_like_error(ln)][-3:]
    return WhyDown(log, (), None, tuple(line.strip() for line in errors))


def _looks_like_error(line: str) -> bool:
    lowered = line.lower()
    return any(w in lowered for w in ("level=error", "level=fatal", "failed", "error"))


@record
class DaemonEvidence:
    """The docker-daemon evidence: the endpoint's probe and, if no daemon runs, why."""

    probe: DockerProbe
    down: WhyDown | None = None  # looked into when the daemon is not running

    def to_data(self) -> dict[str, Any]:
        probe = self.probe
        data: dict[str, Any] = {
            "endpoint": probe.endpoint.url,
            "problem": probe.problem.value if probe.problem else None,
            "reason": probe.reason,
            "version": probe.version,
            "elapsed_ms": round(probe.elapsed * 1000),
        }
        if self.down is not None:
            data["causes"] = self.down.causes()
        return data
