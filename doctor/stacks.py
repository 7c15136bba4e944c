"""The Shipyard stacks as data: which containers each one runs and which host ports.

Stacks are TOML files in ``stacks/`` (package data), not code, so a new stack or a
corrected port is a data change. The host ports a stack needs can be moved per service
with ``[stack.ports]`` in the configuration.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from shipyard_doctor.errors import ConfigError
from shipyard_doctor.validate import shown


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int | None  # None: Docker picks a random host port
    protocol: str = "tcp"


@dataclass(frozen=True)
class Service:
    name: str
    container: str
    image: str
    ports: tuple[PortMapping, ...]
    optional: bool = False
    # "schema1" for images only ever pushed as Docker manifest v2 schema 1 (2014-15),
    # which Docker 26-28.1 refuses to pull by default and 28.2+ cannot pull at all.
    manifest: str = ""


@dataclass(frozen=True)
class Client:
    """A program of the stack that calls the Docker API with a fixed API version."""

    name: str
    api: str  # the version in its request paths, "1.9" for /v1.9/...
    note: str = ""  # how to make it speak another version, if it can


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Stack:
    name: str
    description: str
    services: tuple[Service, ...]
    ui_service: str
    ui_container_port: int
    clients: tuple[Client, ...] = ()

    @property
    def container_names(self) -> frozenset[str]:
        return frozenset(s.container for s in self.services)

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


def available_stacks() -> tuple[str, ...]:
    folder = resources.files("shipyard_doctor") / "stacks"
    return tuple(
        sorted(
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
            if entry.name.endswith(".toml")
        )
    )


@cache
def load_stack(name: str) -> Stack:
    if name not in available_stacks():
        raise ConfigError(
            f"unknown stack {shown(name)} (known: {', '.join(available_stacks())})"
        )
    text = (resources.files("shipyard_doctor") / "stacks" / f"{name}.toml").read_text()
    raw = tomllib.loads(text)
    services = tuple(
        Service(
            name=s["name"],
            container=s["container"],
            image=s["image"],
            ports=tuple(
                PortMapping(p["container"], p.get("host"), p.get("protocol", "tcp"))
                for p in s.get("ports", ())
            ),
            optional=bool(s.get("optional", False)),
            manifest=s.get("manifest", ""),
        )
        for s in raw["services"]
    )
    clients = tuple(
        Client(c["name"], c["api"], c.get("note", "")) for c in raw.get("clients", ())
    )
    return Stack(
        name=raw["name"],
        description=raw["description"],
        services=services,
        ui_service=raw["ui"]["service"],
        ui_container_port=raw["ui"]["container_port"],
        clients=clients,
    )
