"""docker-daemon: does the Docker API answer at the configured endpoint?

Everything else about a Docker host depends on this, so the check spends its effort on
telling the causes apart: Docker not installed, the socket missing, permission denied,
a stale socket with no daemon behind it, a daemon that accepts but never answers, an
endpoint that is not Docker at all, or an API too old for the doctor. When the daemon
is down, its last log lines are read and known causes named (a -H/"hosts" conflict,
-H fd:// without its socket, a daemon.json typo, cgroups, a taken address,
containerd), with the line that shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.daemondown import WhyDown
    from shipyard_doctor.host.dockerapi import DockerProbe
    from shipyard_doctor.host.gateway import Host

DOCS = "https://docs.docker.com/engine/install/"
INSTALL = f"install Docker Engine: {DOCS} (Debian/Ubuntu: apt-get install docker.io)"


class DockerDaemonCheck(Check):
    id = "docker-daemon"
    title = "Docker daemon answers"
    category = "docker"

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host.daemondown import (
            DaemonEvidence,
            describe_probe,
            why_down,
        )
        from shipyard_doctor.host.dockerapi import Problem

        probe = host.docker()
        url = probe.endpoint.url
        running = () if probe.ok else host.dockerd_processes()
        origin = host.config.docker.host_origin
        details = describe_probe(probe, origin, running)
        if probe.ok:
            summary = f"Docker {probe.version.get('Version', '?')} answers at {url}"
            return Result.ok(summary, details=details, evidence=DaemonEvidence(probe))
        manager = host.docker_manager()
        details += [f"manager: {manager.describe()}", *manager.evidence]
        summary, hints = _explain(probe, host)
        found = DaemonEvidence(probe)
        down = probe.problem in (Problem.SOCKET_MISSING, Problem.NOT_RUNNING)
        if down and host.find_binary("dockerd"):
            seen = why_down(host)
            found = DaemonEvidence(probe, seen)
            label, why, fixes = _why_down(seen)
            summary += f" ({label})" if label else ""
            details.extend(why)
            hints = fixes + [h for h in hints if h not in fixes]
        # A hung or unreachable daemon: its state is unknown (error), not bad.
        unknown = (Problem.TIMEOUT, Problem.UNREACHABLE, Problem.NOT_INSTALLED)
        make = Result.error if probe.problem in unknown else Result.failure
        return make(summary, details=details, hints=hints, evidence=found)


def _explain(probe: DockerProbe, host: Host) -> tuple[str, list[str]]:
    """The summary and the hints for a daemon that does not answer."""
    from shipyard_doctor.host.dockerapi import Problem
    from shipyard_doctor.host.dockerlog import daemon_log, read_more
    from shipyard_doctor.host.hints import docker_service, start_hints

    url = probe.endpoint.url
    path = probe.endpoint.path
    installed = host.find_binary("dockerd")
    if probe.problem in (Problem.SOCKET_MISSING, Problem.NOT_RUNNING) and not installed:
        install = (
            f"install Docker Engine: {DOCS} (Debian/Ubuntu: apt-get install docker.io)"
        )
        return "Docker is not installed (no dockerd binary found)", [install]
    match probe.problem:
        case Problem.SOCKET_MISSING:
            return (
                f"the Docker daemon is not running: {path} does not exist",
                start_hints(host),
            )
        case Problem.NOT_RUNNING:
            where = path if probe.endpoint.is_unix else url
            stale = " (a stale socket file)" if probe.endpoint.is_unix else ""
            return (
                f"the Docker daemon is not running: nothing accepts connections on "
                f"{where}{stale}",
                start_hints(host),
            )
        case Problem.PERMISSION_DENIED:
            user = host.username(host.euid)
            return (
                f"permission denied on {path or url} for user {user}",
                [
                    f"add yourself to the docker group: sudo usermod -aG docker {user},"
                    " then log out and in again (members of that group are "
                    "root-equivalent on this host)",
                    "or run the doctor with sudo",
                ],
            )
        case Problem.TIMEOUT:
            return (
                f"the Docker daemon at {url} timed out: it accepted the connection but "
                f"did not answer within {host.docker_timeout:g} s",
                [
                    "the daemon may be hung or overloaded: look at its log "
                    f"({read_more(daemon_log(host).source)}) and restart "
                    f"it ({docker_service(host, 'restart')})",
                    "raise [docker] timeout if this host is just slow",
                ],
            )
        case Problem.NOT_A_SOCKET:
            return (
                f"{path} exists but is not a socket",
                [
                    f"remove or rename {path} and restart Docker so it can create its "
                    "socket"
                ],
            )
        case Problem.NOT_DOCKER:
            return (
                f"{url} answers, but it is not the Docker API",
                ["point --docker-host or [docker] host at the Docker daemon's socket"],
            )
        case Problem.API_TOO_OLD:
            v = probe.version
            need = host.config.docker.min_api_version
            return (
                f"Docker {v.get('Version', '?')} speaks API "
                f"{v.get('ApiVersion', '?')}, older than the {need} this doctor needs",
                ["upgrade Docker Engine: " + DOCS],
            )
        case _:
            return (
                f"cannot reach the Docker API at {url}",
                [
                    "check [docker] host / --docker-host and that the address is "
                    "reachable from this machine"
                ],
            )


def _why_down(down: WhyDown) -> tuple[str, list[str], list[str]]:
    """A summary label, evidence and hints for a daemon that is not running."""
    from shipyard_doctor.host.dockerlog import read_more

    if down.matches:
        hints = [h for m in down.matches for h in m.hints]
        return f"its log says: {down.matches[-1].cause.title}", down.describe(), hints
    if down.conflict is not None:
        label = '-H and daemon.json "hosts" conflict'
        return label, down.describe(), list(down.predicted()[1])
    more = [f"read the whole log: {read_more(down.log.source)}"]
    return "", down.describe(), more if down.log.lines else []
