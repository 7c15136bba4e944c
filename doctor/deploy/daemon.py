"""The Docker API calls a deploy makes, through the docker SDK's low-level client.

The endpoint comes from :class:`~shipyard_doctor.host.gateway.Host` (the configured,
probed daemon); the client gets a longer timeout than checks use, because creating
and starting containers and pulling layers take longer than a read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from shipyard_doctor.deploy.errors import DeployError
from shipyard_doctor.host.dockerapi import DockerProbe, Endpoint, Problem, make_client
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.records import record

API_TIMEOUT = 60.0


@record
class Found:
    """A container that exists, as deploy, status and undeploy see it."""

    id: str
    name: str
    image: str
    state: str
    labels: Mapping[str, str]
    ports: tuple[tuple[int, str, str, int], ...]  # container port, proto, ip, host


class Daemon:
    """The deploy's Docker API: a client of its own with a longer timeout than the
    checks' (pulls, creates and stops take longer); closing it closes the Host too."""

    def __init__(self, host: Host):
        self.host = host
        probe = host.docker()
        if not probe.ok:
            host.close()
            raise DeployError(
                f"Docker does not answer at {probe.endpoint.url} "
                f"({_why_not(probe, host.docker_timeout)}); "
                "run `shipyard-doctor check --only docker-daemon`"
            )
        self.endpoint: Endpoint = probe.endpoint
        self.version = str(probe.version.get("Version", "?"))
        self.api = make_client(probe.endpoint, API_TIMEOUT)

    def close(self) -> None:
        self.api.close()
        self.host.close()

    @property
    def socket_path(self) -> str:
        """The daemon's socket, to mount into the containers that drive Docker."""
        return self.endpoint.path if self.endpoint.is_unix else "/var/run/docker.sock"

    @property
    def local(self) -> bool:
        """Container addresses are reachable from here (same host)."""
        return self.endpoint.is_unix or self.endpoint.host in ("127.0.0.1", "::1")

    def containers(self) -> list[Found]:
        found = []
        for raw in self.api.containers(all=True):
            names = raw.get("Names") or []
            name = min(names, key=lambda n: n.count("/")).lstrip("/") if names else ""
            ports = tuple(
                (
                    int(p["PrivatePort"]),
                    p.get("Type", "tcp"),
                    p.get("IP", ""),
                    int(p["PublicPort"]),
                )
                for p in raw.get("Ports") or ()
                if p.get("PublicPort")
            )
            found.append(
                Found(
                    raw["Id"],
                    name,
                    raw.get("Image", ""),
                    raw.get("State", ""),
                    raw.get("Labels") or {},
                    ports,
                )
            )
        return found

    def has_image(self, ref: str) -> bool:
        import docker

        try:
            self.api.inspect_image(ref)
        except docker.errors.NotFound:
            return False
        return True

    def pull(self, ref: str, on_event: Callable[[Mapping[str, Any]], None]) -> None:
        """Pull through the SDK; raise DeployError with Docker's own message."""
        import docker

        repository, _, tag = ref.rpartition(":")
        if "/" in tag or not repository:
            repository, tag = ref, "latest"
        try:
            for event in self.api.pull(repository, tag, stream=True, decode=True):
                if "error" in event:
                    raise DeployError(_pull_error(ref, str(event["error"])))
                on_event(event)
        except docker.errors.APIError as exc:
            raise DeployError(_pull_error(ref, str(exc.explanation or exc))) from None

    def network(self, name: str) -> dict[str, Any] | None:
        for net in self.api.networks(names=[name]):
            if net.get("Name") == name:
                return dict(net)
        return None

    def networks_labelled(self, stack: str) -> list[dict[str, Any]]:
        from shipyard_doctor.deploy import labels

        found = self.api.networks(filters={"label": f"{labels.STACK}={stack}"})
        return [dict(n) for n in found]

    def volume_exists(self, name: str) -> bool:
        import docker

        try:
            self.api.inspect_volume(name)
        except docker.errors.NotFound:
            return False
        return True

    def volumes_labelled(self, stack: str) -> list[str]:
        from shipyard_doctor.deploy import labels

        found = self.api.volumes(filters={"label": f"{labels.STACK}={stack}"})
        return [v["Name"] for v in (found or {}).get("Volumes") or ()]

    def logs_tail(self, container: str, lines: int = 10) -> tuple[str, ...]:
        with contextlib.suppress(Exception):
            raw = self.api.logs(container, tail=lines, stdout=True, stderr=True)
            text = raw.decode("utf-8", "replace")
            return tuple(line for line in text.splitlines() if line.strip())
        return ()

    def state(self, container: str) -> Mapping[str, Any]:
        """The container's State, plus RestartCount (a crash under a restart
        policy shows as running again a moment later)."""
        info = self.api.inspect_container(container)
        return {**info["State"], "RestartCount": info.get("RestartCount", 0)}

    def environment(self, container: str) -> dict[str, str]:
        """The container's environment as it was created (secrets included: only
        ever compared, never shown)."""
        info = self.api.inspect_container(container)
        pairs = (e.partition("=") for e in info["Config"].get("Env") or ())
        return {name: value for name, _, value in pairs}

    def address(self, container: str, network: str) -> str:
        info = self.api.inspect_container(container)
        nets = info["NetworkSettings"].get("Networks") or {}
        return str((nets.get(network) or {}).get("IPAddress") or "")

    def remove_container(self, container: str, volumes: bool) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_container(container, force=True, v=volumes)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """For rollback: one resource that cannot be removed must not stop the rest."""
        import docker

        with contextlib.suppress(docker.errors.APIError):
            yield


def _why_not(probe: DockerProbe, timeout: float) -> str:
    """The probe's problem in a few words (its reason is the library's own text)."""
    match probe.problem:
        case Problem.TIMEOUT:
            return f"it accepted the connection but did not answer within {timeout:g} s"
        case Problem.PERMISSION_DENIED:
            return f"permission denied on {probe.endpoint.path or probe.endpoint.url}"
        case Problem.SOCKET_MISSING:
            return f"{probe.endpoint.path} does not exist"
        case Problem.NOT_RUNNING:
            return "nothing accepts connections there"
    return f"{probe.problem}: {probe.reason}"


def _pull_error(ref: str, message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if "schema 1" in message.lower() or "schema1" in message.lower():
        return (
            f"cannot pull {ref}: this Docker no longer pulls manifest schema 1 images "
            f"(2014-15 images; removed in Docker 28.2): map it to a rebuilt image with "
            f"--image-map {ref}=REGISTRY/IMAGE:TAG or [stack.images]"
        )
    return f"cannot pull {ref}: {first}"
