"""Facts about which Docker daemon is which: running dockerds, where clients point,
data-roots that hold containers, and what is left of a Shipyard deployment.

These answer the story's "a system that wouldn't see any existing containers or
images" after a failed install (domain.md section 8): a second daemon, a client
pointed at another daemon (DOCKER_HOST, docker context), a daemon started on an
empty data-root while another one holds the containers, or a half-deployed stack.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard_doctor.errors import DoctorError
from shipyard_doctor.host.daemonconf import (
    read_json_object,
    setup_from_argv,
)
from shipyard_doctor.host.dockerapi import describe_error, parse_endpoint
from shipyard_doctor.host.dockerhttp import DockerHttp
from shipyard_doctor.host.facts import Unavailable, host_fact
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shipyard_doctor.host.gateway import Container, Host
    from shipyard_doctor.stacks import Stack


@record
class Daemon:
    """A running dockerd: where it listens, its data-root and daemon.json, and whether
    it shares the doctor's network namespace."""

    pid: int
    hosts: tuple[str, ...]
    data_root: str
    config_file: str
    same_netns: bool | None  # None: cannot tell (not allowed to look)

    def describe(self) -> str:
        hosts = ", ".join(self.hosts) or "default socket"
        return (
            f"dockerd pid {self.pid}: -H {hosts}, data-root {self.data_root}, "
            f"config {self.config_file}"
        )


@host_fact
def running_daemons(host: Host) -> tuple[Daemon, ...]:
    """Every dockerd process with its effective hosts and data-root (flags first,
    then the daemon.json it reads, then dockerd's defaults)."""

    daemons = []
    for proc in host.dockerd_processes():
        setup = setup_from_argv("", proc.cmdline, host.config.docker.daemon_json)
        daemons.append(
            Daemon(
                proc.pid,
                setup.flags.hosts or setup.daemon_json.hosts or (),
                setup.data_root,
                setup.daemon_json.path,
                host.in_own_netns(proc.pid),
            )
        )
    return tuple(daemons)


def daemons_here(daemons: Sequence[Daemon]) -> list[Daemon]:
    """The dockerds of this network namespace (or whose namespace is hidden)."""
    return [d for d in daemons if d.same_netns is not False]


def system_data_root(host: Host) -> str:
    """Where the system's dockerd keeps its state: daemon.json's data-root, else
    /var/lib/docker."""
    return setup_from_argv("", ("dockerd",), host.config.docker.daemon_json).data_root


def count_containers(data_root: str) -> int | None:
    """Containers stored under a data-root (dirs named by a 64-hex id in
    containers/); 0 when there is no such dir, None when it may not be read."""
    try:
        entries = list(os.scandir(os.path.join(data_root, "containers")))
    except FileNotFoundError:
        return 0
    except OSError:
        return None
    return sum(
        1
        for e in entries
        if len(e.name) == 64
        and all(c in "0123456789abcdef" for c in e.name)
        and e.is_dir()
    )


@record
class ClientEndpoint:
    """A Docker endpoint the docker CLI is set to use: ``DOCKER_HOST`` or a docker
    context, and its URL."""

    source: str  # "DOCKER_HOST" or "docker context NAME (PATH)"
    url: str


def client_endpoints(environ: dict[str, str]) -> list[ClientEndpoint]:
    """Where the docker CLI (and Shipyard's deploy run through it) would connect:
    DOCKER_HOST, and the current context (DOCKER_CONTEXT, else config.json's
    currentContext) whose endpoint is in contexts/meta/<sha256 of name>/meta.json."""
    found = []
    if environ.get("DOCKER_HOST"):
        found.append(ClientEndpoint("DOCKER_HOST", environ["DOCKER_HOST"]))
    config_dir = environ.get("DOCKER_CONFIG") or (
        os.path.join(environ["HOME"], ".docker") if environ.get("HOME") else ""
    )
    if not config_dir:
        return found
    name = environ.get("DOCKER_CONTEXT") or str(
        read_json_object(os.path.join(config_dir, "config.json")).get(
            "currentContext", ""
        )
    )
    if not name or name == "default":
        return found
    import hashlib  # OpenSSL's start-up: only when a docker context is in use

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = os.path.join(config_dir, "contexts", "meta", digest, "meta.json")
    meta = read_json_object(meta_path)
    url = (meta.get("Endpoints") or {}).get("docker", {}).get("Host")
    if isinstance(url, str) and url:
        found.append(ClientEndpoint(f"docker context {name} ({meta_path})", url))
    return found


def same_endpoint(a: str, b: str) -> bool:
    """Whether two Docker URLs name the same socket (/var/run is /run) or address."""
    return _key(a) == _key(b) and _key(a) is not None


def _key(url: str) -> tuple[str, ...] | None:
    try:
        endpoint = parse_endpoint(url)
    except DoctorError:
        return None  # ssh:// and fd:// are not comparable here
    if endpoint.is_unix:
        return ("unix", os.path.realpath(endpoint.path))
    return (endpoint.scheme, endpoint.host, str(endpoint.port))


@host_fact
def daemon_info(host: Host, url: str | None = None) -> dict[str, Any] | Unavailable:
    """GET /info of the configured daemon (or of ``url``), or why it did not answer.
    Its ID tells two endpoints of one daemon from two daemons."""
    if url is None:
        try:
            info: dict[str, Any] = host.docker_api().info()
        except Exception as exc:  # OSError, a timeout, an HTTP error
            return Unavailable(describe_error(exc))
        return info
    try:
        endpoint = parse_endpoint(url)
    except DoctorError as exc:
        return Unavailable(str(exc))
    try:  # another daemon's, for once
        return DockerHttp(endpoint, host.docker_timeout).info()
    except Exception as exc:
        return Unavailable(describe_error(exc))


@record
class ServiceState:
    """A container of the stack and its state (``missing`` when it does not exist)."""

    container: str
    state: str  # running, exited, created, ... or "missing"
    optional: bool


def stack_state(stack: Stack, containers: Sequence[Container]) -> list[ServiceState]:
    """Each container of the stack and its state; optional ones only if present."""
    by_name = {c.name: c for c in containers}
    states = []
    for service in stack.services:
        found = by_name.get(service.container)
        if found is None and service.optional:
            continue
        state = found.state if found is not None else "missing"
        states.append(ServiceState(service.container, state, service.optional))
    return states


@record
class StackStanding:
    """How the stack's containers stand, in the stack's order."""

    present: tuple[ServiceState, ...]  # the containers that exist
    missing: tuple[str, ...]  # the containers that do not

    @property
    def running(self) -> tuple[str, ...]:
        return tuple(s.container for s in self.present if s.state == "running")

    @property
    def stopped(self) -> tuple[ServiceState, ...]:
        return tuple(s for s in self.present if s.state != "running")

    @property
    def stopped_names(self) -> tuple[str, ...]:
        return tuple(s.container for s in self.stopped)


def stack_standing(stack: Stack, containers: Sequence[Container]) -> StackStanding:
    states = stack_state(stack, containers)
    return StackStanding(
        tuple(s for s in states if s.state != "missing"),
        tuple(s.container for s in states if s.state == "missing"),
    )


@record
class UiPorts:
    """The UI container's host ports: the stack's fixed one and those it really has."""

    container: str
    fixed: int  # the host port the stack publishes the UI on (after [stack.ports])
    published: frozenset[tuple[str, int]]  # (host ip, host port) it really has

    @property
    def on_fixed_port(self) -> bool:
        return self.fixed in {port for _, port in self.published}

    def first_published(self) -> tuple[str | None, int]:
        """The first (host ip, host port) published; ip None for every address."""
        ip, port = sorted(self.published)[0]
        return (None if ip in ("", "0.0.0.0", "::") else ip), port


def ui_ports(
    stack: Stack, containers: Sequence[Container], overrides: Mapping[str, int]
) -> UiPorts | None:
    """Where the UI container really publishes its port; None when the UI has no
    fixed host port or no container. A random host port here is the July-2014
    deploy script's `-p :8000` (domain.md section 0.4)."""
    service = next(s for s in stack.services if s.name == stack.ui_service)
    fixed = next(
        (
            p.port
            for p in stack.host_ports(overrides)
            if p.service == service.name and p.container_port == stack.ui_container_port
        ),
        None,
    )
    found = next((c for c in containers if c.name == service.container), None)
    if fixed is None or found is None:
        return None
    return UiPorts(
        service.container,
        fixed,
        frozenset(
            (p.host_ip, p.host_port)
            for p in found.ports
            if p.container_port == stack.ui_container_port and p.protocol == "tcp"
        ),
    )
