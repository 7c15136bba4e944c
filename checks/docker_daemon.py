"""docker-daemon: does the Docker API answer at the configured endpoint?

Everything else about a Docker host depends on this, so the check spends its effort on
telling the causes apart: Docker not installed, the socket missing, permission denied,
a stale socket with no daemon behind it, a daemon that accepts but never answers, an
endpoint that is not Docker at all, or an API too old for the doctor.
"""

from __future__ import annotations

from shipyard_doctor.dockerapi import DockerProbe, Problem
from shipyard_doctor.host import Host
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
        summary, hints, as_error = _explain(probe, host)
        make = Result.error if as_error else Result.failure
        return make(summary, details=details, hints=hints, data=_data(probe))


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
                    "the daemon may be hung or overloaded: look at its log (journalctl "
                    "-u docker.service) and restart it (systemctl restart docker)",
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
    hints = [
        "start Docker: sudo systemctl start docker (or: sudo service docker start)"
    ]
    if host.dockerd_processes():
        hints.insert(
            0,
            "a dockerd is running but not at this endpoint: point --docker-host or "
            "[docker] host at the socket it serves (see its -H flags above)",
        )
    return hints


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
