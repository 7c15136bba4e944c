"""The Shipyard stacks as data: which containers each one runs, how, and in what order.

Stacks are TOML files in ``stacks/`` (package data), not code, so a new stack or a
corrected port is a data change. A service says what `docker run` said for it in the
original deploy script (image, ports, environment, command, entrypoint, volumes,
links) plus what the doctor adds: its readiness probe and restart policy. The host
ports a stack needs can be moved per service with ``[stack.ports]`` in the
configuration. A malformed stack file is a :class:`ConfigError` naming the file and
the field.

Values may use ``${name}`` placeholders filled at deploy time (see
:data:`PLACEHOLDERS`): secrets are never written into the data.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from typing import Any

from shipyard_doctor.errors import ConfigError
from shipyard_doctor.records import record
from shipyard_doctor.validate import shown

#: What ``${...}`` may name in a stack's env, command, entrypoint and volume sources.
PLACEHOLDERS = frozenset(
    {"db_password", "admin_password", "docker_socket", "host_ip", "ui_url"}
)
PROBES = ("http", "tcp", "redis", "running")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


@record
class PortMapping:
    """A port a service publishes (``-p``): container port, host port and protocol."""

    container_port: int
    host_port: int | None  # None: Docker picks a random host port
    protocol: str = "tcp"


@record
class Probe:
    """How to tell a started service is ready: ``http`` (GET path answers < 400),
    ``tcp`` (the port accepts), ``redis`` (PING answers PONG) on the container's
    address, or ``running`` (the container is still up after a second)."""

    kind: str = "running"
    port: int = 0
    path: str = "/"
    timeout: float = 60.0


@record
class Link:
    """What `--link service:alias` gave: the name to reach it by, and its legacy
    environment (ALIAS_PORT_6379_TCP_ADDR, ALIAS_ENV_DB_PASS, ...)."""

    service: str
    alias: str


@record
class Volume:
    """A mount of a service: a named volume or a host path, at a target."""

    target: str
    source: str = ""  # a named volume (created, labelled, kept by undeploy)
    bind: str = ""  # a host path (may be ${docker_socket})
    read_only: bool = False


@record
class Service:
    """One service of a stack: its container and what ``docker run`` said for it."""

    name: str
    container: str
    image: str
    ports: tuple[PortMapping, ...]
    optional: bool = False
    # "schema1" for images only ever pushed as Docker manifest v2 schema 1 (2014-15),
    # which Docker 26-28.1 refuses to pull by default and 28.2+ cannot pull at all.
    manifest: str = ""
    expose: tuple[int, ...] = ()  # ports the image exposes without publishing
    aliases: tuple[str, ...] = ()  # extra names on the stack's network
    links: tuple[Link, ...] = ()
    after: tuple[str, ...] = ()  # services to start first (links imply it)
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] | None = None  # None: the image's CMD
    entrypoint: tuple[str, ...] | None = None  # None: the image's ENTRYPOINT
    volumes: tuple[Volume, ...] = ()
    restart: str = "no"
    tty: bool = False  # `-i -t`: a shell as the command only stays up with one
    ready: Probe = Probe()

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*(lk.service for lk in self.links), *self.after]))

    @property
    def container_ports(self) -> tuple[int, ...]:
        return tuple(
            dict.fromkeys([*(p.container_port for p in self.ports), *self.expose])
        )


@record
class Client:
    """A program of the stack that calls the Docker API with a fixed API version."""

    name: str
    api: str  # the version in its request paths, "1.9" for /v1.9/...
    note: str = ""  # how to make it speak another version, if it can
    service: str = ""  # the service that runs it ("" = always deployed)


@record
class HostPort:
    """A fixed host port the stack publishes, after configuration overrides."""

    service: str
    container: str
    container_port: int
    port: int
    default: int
    protocol: str = "tcp"

    @property
    def moved(self) -> bool:
        return self.port != self.default


@record
class Login:
    """The stack UI's login: the admin user, its 2014 default password, and the
    variable that sets another at first start."""

    user: str = "admin"
    default_password: str = ""  # the 2014 default: deploy warns when it is kept
    password_env: str = ""  # the env var that sets it at first start ("" = cannot)


@record
class Stack:
    """A Shipyard stack: its services, its UI, the Docker clients it ships and the
    network a deploy creates."""

    name: str
    description: str
    services: tuple[Service, ...]
    ui_service: str
    ui_container_port: int
    clients: tuple[Client, ...] = ()
    network: str = ""  # the user-defined network deploy creates
    login: Login = Login()
    agent_hint: str = ""  # how to run the agent afterwards

    @property
    def container_names(self) -> frozenset[str]:
        return frozenset(s.container for s in self.services)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def deploy_order(self, names: frozenset[str] | None = None) -> tuple[Service, ...]:
        """Services (all, or those named) with every dependency before its users."""
        wanted = {s.name for s in self.services} if names is None else set(names)
        done: list[Service] = []
        visiting: list[str] = []

        def visit(service: Service) -> None:
            if service in done:
                return
            if service.name in visiting:
                cycle = " -> ".join([*visiting, service.name])
                raise ValueError(f"dependency cycle {cycle}")
            visiting.append(service.name)
            for dep in service.depends_on:
                visit(self.service(dep))
            visiting.pop()
            done.append(service)

        for service in self.services:
            if service.name in wanted:
                visit(service)
        return tuple(done)

    def override_keys(self) -> dict[str, tuple[Service, PortMapping]]:
        """Keys accepted in ``[stack.ports]``: ``service``, or ``service/port``.

        The short form is only offered for a service with exactly one fixed port.
        """
        keys: dict[str, tuple[Service, PortMapping]] = {}
        for service in self.services:
            fixed = [p for p in service.ports if p.host_port is not None]
            for mapping in fixed:
                keys[f"{service.name}/{mapping.container_port}"] = (service, mapping)
            if len(fixed) == 1:
                keys[service.name] = (service, fixed[0])
        return keys

    def host_ports(self, overrides: Mapping[str, int]) -> tuple[HostPort, ...]:
        keys = self.override_keys()
        moved: dict[tuple[str, int], int] = {}
        for key, port in overrides.items():
            service, mapping = keys[key]  # validated when the config was loaded
            moved[(service.name, mapping.container_port)] = port
        result = []
        for service in self.services:
            for mapping in service.ports:
                if mapping.host_port is None:
                    continue
                moved_to = moved.get((service.name, mapping.container_port))
                result.append(
                    HostPort(
                        service=service.name,
                        container=service.container,
                        container_port=mapping.container_port,
                        port=mapping.host_port if moved_to is None else moved_to,
                        default=mapping.host_port,
                        protocol=mapping.protocol,
                    )
                )
        return tuple(result)


# Package data beside this module (pyproject's package-data), read as plain files:
# importlib.resources cost ~4 ms of every start, and the package is never zipped.
STACKS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stacks")


def available_stacks() -> tuple[str, ...]:
    return tuple(
        sorted(
            name.removesuffix(".toml")
            for name in os.listdir(STACKS_DIR)
            if name.endswith(".toml")
        )
    )


@cache
def load_stack(name: str) -> Stack:
    if name not in available_stacks():
        raise ConfigError(
            f"unknown stack {shown(name)} (known: {', '.join(available_stacks())})"
        )
    with open(os.path.join(STACKS_DIR, f"{name}.toml"), encoding="utf-8") as file:
        text = file.read()
    return parse_stack(text, f"stack file stacks/{name}.toml")


def parse_stack(text: str, origin: str) -> Stack:
    """A stack from its TOML text; any malformed field is a one-line ConfigError."""
    try:
        raw = tomllib.loads(text)
        return _StackReader(raw).stack()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: TOML syntax error: {exc}") from None
    except _Bad as exc:
        raise ConfigError(f"{origin}: {exc} (fix the stack data)") from None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class _Bad(Exception):
    """A malformed field: the message names it."""


class _StackReader:
    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw

    def stack(self) -> Stack:
        raw = self.raw
        services = tuple(
            self.service(s, f"services[{i}]")
            for i, s in enumerate(_get(raw, "services", list, "", required=True))
        )
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise _Bad(f"two services share a name in {shown(names)}")
        for service in services:
            for dep in service.depends_on:
                if dep not in names:
                    raise _Bad(
                        f"service {service.name} depends on unknown {shown(dep)}"
                    )
        ui = _get(raw, "ui", dict, "", required=True)
        clients = tuple(
            Client(
                _get(c, "name", str, f"clients[{i}]", required=True),
                _get(c, "api", str, f"clients[{i}]", required=True),
                _get(c, "note", str, f"clients[{i}]") or "",
                _get(c, "service", str, f"clients[{i}]") or "",
            )
            for i, c in enumerate(_get(raw, "clients", list, "") or [])
        )
        login = _get(raw, "login", dict, "") or {}
        stack = Stack(
            name=_get(raw, "name", str, "", required=True),
            description=_get(raw, "description", str, "", required=True),
            services=services,
            ui_service=_get(ui, "service", str, "ui", required=True),
            ui_container_port=_get(ui, "container_port", int, "ui", required=True),
            clients=clients,
            network=_get(raw, "network", str, "") or "",
            login=Login(
                _get(login, "user", str, "login") or "admin",
                _get(login, "default_password", str, "login") or "",
                _get(login, "password_env", str, "login") or "",
            ),
            agent_hint=_get(raw, "agent_hint", str, "") or "",
        )
        if stack.ui_service not in names:
            raise _Bad(f"ui.service {shown(stack.ui_service)} is not a service")
        try:
            stack.deploy_order()
        except ValueError as exc:
            raise _Bad(str(exc)) from None
        return stack

    def service(self, s: Any, at: str) -> Service:
        if not isinstance(s, dict):
            raise _Bad(f"{at} must be a table")
        name = _get(s, "name", str, at, required=True)
        if not _NAME.fullmatch(name):
            raise _Bad(f"{at}.name {shown(name)} must be letters, digits, _ . or -")
        at = f"services.{name}"
        env = _get(s, "env", dict, at) or {}
        for key, value in env.items():
            if not isinstance(value, str):
                raise _Bad(
                    f"{at}.env.{shown(key)} must be a string, got {shown(value)}"
                )
        command = _get(s, "command", list, at)
        entrypoint = _get(s, "entrypoint", list, at)
        restart = _get(s, "restart", str, at) or "no"
        if restart not in RESTART_POLICIES:
            raise _Bad(f"{at}.restart must be one of {', '.join(RESTART_POLICIES)}")
        service = Service(
            name=name,
            container=_get(s, "container", str, at, required=True),
            image=_get(s, "image", str, at, required=True),
            ports=tuple(
                self.port(p, f"{at}.ports") for p in _get(s, "ports", list, at) or []
            ),
            optional=bool(_get(s, "optional", bool, at)),
            manifest=_get(s, "manifest", str, at) or "",
            expose=tuple(
                _port(p, f"{at}.expose") for p in _get(s, "expose", list, at) or []
            ),
            aliases=tuple(
                _strings(_get(s, "aliases", list, at) or [], f"{at}.aliases")
            ),
            links=tuple(
                self.link(lk, f"{at}.links") for lk in _get(s, "links", list, at) or []
            ),
            after=tuple(_strings(_get(s, "after", list, at) or [], f"{at}.after")),
            env=tuple((str(k), v) for k, v in env.items()),
            command=None
            if command is None
            else tuple(_strings(command, f"{at}.command")),
            entrypoint=None
            if entrypoint is None
            else tuple(_strings(entrypoint, f"{at}.entrypoint")),
            volumes=tuple(
                self.volume(v, f"{at}.volumes")
                for v in _get(s, "volumes", list, at) or []
            ),
            restart=restart,
            tty=bool(_get(s, "tty", bool, at)),
            ready=self.probe(_get(s, "ready", dict, at) or {}, f"{at}.ready"),
        )
        texts = [v for _, v in service.env] + list(service.command or ())
        texts += list(service.entrypoint or ()) + [v.bind for v in service.volumes]
        for text in texts:
            for placeholder in _PLACEHOLDER.findall(text):
                if placeholder not in PLACEHOLDERS:
                    raise _Bad(
                        f"{at}: unknown placeholder ${{{placeholder}}} (known: "
                        f"{', '.join(sorted(PLACEHOLDERS))})"
                    )
        return service

    def port(self, p: Any, at: str) -> PortMapping:
        if not isinstance(p, dict):
            raise _Bad(f"{at} entries must be tables like {{ container = 80 }}")
        host = _get(p, "host", int, at)
        return PortMapping(
            _port(_get(p, "container", int, at, required=True), at),
            None if host is None else _port(host, at),
            _get(p, "protocol", str, at) or "tcp",
        )

    def link(self, lk: Any, at: str) -> Link:
        if not isinstance(lk, dict):
            raise _Bad(f'{at} entries must be tables like {{ service = "redis" }}')
        service = _get(lk, "service", str, at, required=True)
        return Link(service, _get(lk, "alias", str, at) or service)

    def volume(self, v: Any, at: str) -> Volume:
        if not isinstance(v, dict):
            raise _Bad(f"{at} entries must be tables like {{ source=..., target=... }}")
        volume = Volume(
            target=_get(v, "target", str, at, required=True),
            source=_get(v, "source", str, at) or "",
            bind=_get(v, "bind", str, at) or "",
            read_only=bool(_get(v, "read_only", bool, at)),
        )
        if bool(volume.source) == bool(volume.bind):
            raise _Bad(f"{at}: give exactly one of source (a named volume) or bind")
        return volume

    def probe(self, r: Mapping[str, Any], at: str) -> Probe:
        kind = _get(r, "kind", str, at) or "running"
        if kind not in PROBES:
            raise _Bad(
                f"{at}.kind must be one of {', '.join(PROBES)}, got {shown(kind)}"
            )
        port = _get(r, "port", int, at) or 0
        if kind != "running":
            _port(port, f"{at}.port")
        timeout = _get(r, "timeout", (int, float), at) or 60.0
        if not 0 < timeout < math.inf:  # NaN too
            raise _Bad(f"{at}.timeout must be a positive number of seconds")
        return Probe(kind, port, _get(r, "path", str, at) or "/", float(timeout))


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    at: str,
    required: bool = False,
) -> Any:
    where = f"{at}.{key}" if at else key
    if not isinstance(table, Mapping):
        raise _Bad(f"{at or 'the stack'} must be a table, got {shown(table)}")
    if key not in table:
        if required:
            raise _Bad(f"{where} is missing")
        return None
    value = table[key]
    if isinstance(value, bool) and kind is not bool:
        raise _Bad(f"{where} has the wrong type (got {shown(value)})")
    if not isinstance(value, kind):
        raise _Bad(f"{where} has the wrong type (got {shown(value)})")
    return value


def _port(value: Any, at: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _Bad(f"{at}: {shown(value)} is not a port number from 1 to 65535")
    return value


def _strings(values: list[Any], at: str) -> list[str]:
    if not all(isinstance(v, str) for v in values):
        raise _Bad(f"{at} must be a list of strings")
    return values
