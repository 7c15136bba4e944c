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

from shipyard_doctor.host import daemonconf, dockerlog, manager
from shipyard_doctor.host.dockerapi import DockerProbe, Problem
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.hints import docker_service
from shipyard_doctor.model import Check, Result

DOCS = "https://docs.docker.com/engine/install/"


class DockerDaemonCheck(Check):
    id = "docker-daemon"
    title = "Docker daemon answers"
    category = "docker"

    def run(self, host: Host) -> Result:
        probe = host.docker()
        url = probe.endpoint.url
        details = [f"endpoint: {url} (from {host.config.docker.host_origin})"]
        if probe.socket_info:
            details.append(f"socket: {probe.socket_info} {probe.endpoint.path}")
        if probe.ok:
            v = probe.version
            details.append(
                f"Docker {v.get('Version', '?')}, API {v.get('ApiVersion', '?')} "
                f"(minimum {v.get('MinAPIVersion', '?')}), {v.get('Os', '?')}/"
                f"{v.get('Arch', '?')}, answered in {probe.elapsed * 1000:.0f} ms"
            )
            return Result.ok(
                f"Docker {v.get('Version', '?')} answers at {url}",
                details=details,
                data=_data(probe),
            )
        if probe.reason and probe.problem is not Problem.SOCKET_MISSING:
            details.append(f"cause: {probe.reason}")
        details.extend(_running_daemons(host))
        found = host.docker_manager()
        details += [f"manager: {found.describe()}", *found.evidence]
        summary, hints, as_error = _explain(probe, host)
        data = _data(probe)
        down = probe.problem in (Problem.SOCKET_MISSING, Problem.NOT_RUNNING)
        if down and host.find_binary("dockerd"):
            label, why, fixes, causes = _why_down(host)
            summary += f" ({label})" if label else ""
            details.extend(why)
            hints = fixes + [h for h in hints if h not in fixes]
            data["causes"] = causes
        make = Result.error if as_error else Result.failure
        return make(summary, details=details, hints=hints, data=data)


def _explain(probe: DockerProbe, host: Host) -> tuple[str, list[str], bool]:
    """Summary, hints, and whether the state is unknown (error) rather than bad."""
    url = probe.endpoint.url
    path = probe.endpoint.path
    installed = host.find_binary("dockerd")
    if probe.problem in (Problem.SOCKET_MISSING, Problem.NOT_RUNNING) and not installed:
        return (
            "Docker is not installed (no dockerd binary found)",
            [
                f"install Docker Engine: {DOCS} "
                "(Debian/Ubuntu: apt-get install docker.io)"
            ],
            False,
        )
    match probe.problem:
        case Problem.SOCKET_MISSING:
            return (
                f"the Docker daemon is not running: {path} does not exist",
                _start_hints(host),
                False,
            )
        case Problem.NOT_RUNNING:
            where = path if probe.endpoint.is_unix else url
            stale = " (a stale socket file)" if probe.endpoint.is_unix else ""
            return (
                f"the Docker daemon is not running: nothing accepts connections on "
                f"{where}{stale}",
                _start_hints(host),
                False,
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
                False,
            )
        case Problem.TIMEOUT:
            return (
                f"the Docker daemon at {url} timed out: it accepted the connection but "
                f"did not answer within {host.docker_timeout:g} s",
                [
                    "the daemon may be hung or overloaded: look at its log "
                    f"({_read_more(dockerlog.daemon_log(host).source)}) and restart "
                    f"it ({docker_service(host, 'restart')})",
                    "raise [docker] timeout if this host is just slow",
                ],
                True,
            )
        case Problem.NOT_A_SOCKET:
            return (
                f"{path} exists but is not a socket",
                [
                    f"remove or rename {path} and restart Docker so it can create its "
                    "socket"
                ],
                False,
            )
        case Problem.NOT_DOCKER:
            return (
                f"{url} answers, but it is not the Docker API",
                ["point --docker-host or [docker] host at the Docker daemon's socket"],
                False,
            )
        case Problem.API_TOO_OLD:
            v = probe.version
            need = host.config.docker.min_api_version
            return (
                f"Docker {v.get('Version', '?')} speaks API "
                f"{v.get('ApiVersion', '?')}, older than the {need} this doctor needs",
                ["upgrade Docker Engine: " + DOCS],
                False,
            )
        case _:
            return (
                f"cannot reach the Docker API at {url}",
                [
                    "check [docker] host / --docker-host and that the address is "
                    "reachable from this machine"
                ],
                True,
            )


def _start_hints(host: Host) -> list[str]:
    hints = [f"start Docker: {docker_service(host, 'start')}"]
    if manager.start_limit_hit(host):
        hints.insert(0, dockerlog.START_LIMIT_HINT)
    if host.dockerd_processes():
        hints.insert(
            0,
            "a dockerd is running but not at this endpoint: point --docker-host or "
            "[docker] host at the socket it serves (see its -H flags above)",
        )
    return hints


def _why_down(host: Host) -> tuple[str, list[str], list[str], list[dict[str, str]]]:
    """A summary label, evidence, hints and data for a daemon that is not running:
    known causes in its last log lines, else a conflict its configuration predicts,
    else the log's last error lines."""
    log = dockerlog.daemon_log(host)
    if log.problem:
        details = [f"log: {log.source}: {log.problem}"]
    else:
        details = [f"log: last {len(log.lines)} lines of {log.source}"]
    hints: list[str] = []
    fields = {
        "file": host.config.docker.daemon_json,
        "dockerd": host.find_binary("dockerd") or "/usr/bin/dockerd",
    }
    matches = dockerlog.drop_stale(
        dockerlog.known_causes(log.last_attempt(), fields), fields["file"]
    )
    for m in matches:
        details += [f"log says: {m.line}", f"known cause: {m.explanation}"]
        hints += m.hints
    causes = [{"id": m.cause.id, "line": m.line} for m in matches]
    if matches:
        return f"its log says: {matches[-1].cause.title}", details, hints, causes
    setup = manager.managed_setup(host) or daemonconf.unit_setup(host).setup
    if setup is not None and setup.conflict:
        explanation, hints2 = dockerlog.explain(
            "hosts-flag-and-file", file=setup.daemon_json.path, dockerd=setup.argv[0]
        )
        details += [f"configuration predicts: {setup.conflict}", explanation]
        causes.append({"id": "hosts-flag-and-file", "line": ""})
        return '-H and daemon.json "hosts" conflict', details, list(hints2), causes
    errors = [ln for ln in log.last_attempt() if _looks_like_error(ln)][-3:]
    details += [f"log says: {line.strip()}" for line in errors]
    if log.lines:
        hints.append(f"read the whole log: {_read_more(log.source)}")
    return "", details, hints, causes


def _looks_like_error(line: str) -> bool:
    lowered = line.lower()
    return any(w in lowered for w in ("level=error", "level=fatal", "failed", "error"))


def _read_more(source: str) -> str:
    if source.startswith("journalctl"):
        return "journalctl -u docker.service -n 200 --no-pager"
    return f"tail -n 200 {source}"


def _running_daemons(host: Host) -> list[str]:
    return [f"running: {p.describe()}" for p in host.dockerd_processes()]


def _data(probe: DockerProbe) -> dict[str, object]:
    return {
        "endpoint": probe.endpoint.url,
        "problem": probe.problem.value if probe.problem else None,
        "reason": probe.reason,
        "version": probe.version,
        "elapsed_ms": round(probe.elapsed * 1000),
    }
