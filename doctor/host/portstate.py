"""Who holds each fixed host port of the selected stack, and where it could move.

:func:`ports_evidence` looks at the listening sockets (and their owners), the ports
containers publish and a test bind on IPv4 and IPv6; the check ports words the
verdict and the fix ports reads :class:`PortsEvidence` by its fields.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host.facts import Unavailable
from shipyard_doctor.host.sockets import Bind, Listener, try_bind
from shipyard_doctor.records import field, record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Container, Host, ProcessInfo
    from shipyard_doctor.stacks import HostPort, Stack

FAMILIES = (socket.AF_INET, socket.AF_INET6)


class HolderKind(StrEnum):
    CONTAINER = "container"  # a container publishes the port
    PROCESS = "process"  # a process listens on it
    UNKNOWN = "unknown"  # a socket whose owner is not visible


@record
class Holder:
    """What holds a host port: a container that publishes it, a process that listens
    on it, or a socket whose owner is not visible."""

    kind: HolderKind
    shipyard: bool = False  # a container of the selected Shipyard stack
    container: Container | None = None
    process: ProcessInfo | None = None
    address: str = ""  # where it listens (the first address of a process)
    addresses: tuple[str, ...] = ()  # a process: every address it listens on
    uid: int | None = None  # of a socket whose owner is not visible
    user: str = ""

    def describe(self, is_root: bool) -> str:
        """One line naming the holder, for the user."""
        if self.container is not None:
            c = self.container
            note = " — a previous Shipyard deployment" if self.shipyard else ""
            return f"published by container {c.name} (image {c.image}, {c.state}){note}"
        if self.process is not None:
            where = ", ".join(self.addresses or (self.address,))
            return f"{self.process.describe()} listens on {where}"
        if self.uid is None:
            return "an unidentified socket (not listening) is bound to it"
        why = "" if is_root else " (run as root to see which process)"
        return (
            f"a process of user {self.user} listens on {self.address}; its owner is "
            f"not visible{why}"
        )

    def to_data(self) -> dict[str, object]:
        if self.container is not None:
            c = self.container
            return {
                "kind": "container",
                "name": c.name,
                "image": c.image,
                "id": c.id[:12],
                "shipyard": self.shipyard,
            }
        if self.process is not None:
            p = self.process
            return {
                "kind": "process",
                "pid": p.pid,
                "name": p.name,
                "cmdline": list(p.cmdline),
                "user": p.user,
                "address": self.address,
                "addresses": list(self.addresses or (self.address,)),
            }
        if self.uid is None:
            return {"kind": "unknown"}
        return {
            "kind": "unknown",
            "uid": self.uid,
            "user": self.user,
            "address": self.address,
        }


@record
class PortState:
    """One fixed host port of the stack: who holds it, whether it can be bound, and the
    next free port to move to."""

    want: HostPort
    key: str  # its [stack.ports] key
    holders: tuple[Holder, ...]
    binds: Mapping[socket.AddressFamily, Bind] = field(default_factory=dict)
    move_to: int | None = None  # the next free port, for a foreign holder
    moves: bool = False  # ``move_to`` was looked for

    @property
    def free(self) -> bool:
        return not self.holders

    @property
    def ours(self) -> bool:
        """Held, by containers of the selected stack only."""
        return bool(self.holders) and all(h.shipyard for h in self.holders)

    def to_data(self) -> dict[str, object]:
        data: dict[str, object] = {
            "port": self.want.port,
            "service": self.want.service,
            "container": self.want.container,
            "container_port": self.want.container_port,
            "key": self.key,
            "free": self.free,
            "bind": {_family(f): b.value for f, b in self.binds.items()},
            "holders": [h.to_data() for h in self.holders],
        }
        if self.moves:
            data["move_to"] = self.move_to
        return data


@record
class PortsEvidence:
    """The ports evidence: each fixed host port of the stack, and who holds it."""

    stack: Stack
    ports: tuple[PortState, ...]
    containers: tuple[Container, ...] | Unavailable

    @property
    def foreign(self) -> tuple[PortState, ...]:
        return tuple(p for p in self.ports if p.holders and not p.ours)

    @property
    def ours(self) -> tuple[PortState, ...]:
        return tuple(p for p in self.ports if p.ours)

    def to_data(self) -> dict[str, Any]:
        return {"stack": self.stack.name, "ports": [p.to_data() for p in self.ports]}


def _family(family: socket.AddressFamily) -> str:
    return "ipv4" if family == socket.AF_INET else "ipv6"


def ports_evidence(host: Host) -> PortsEvidence:
    stack = host.stack()
    overrides = host.config.stack.ports
    wanted = sorted(stack.host_ports(overrides), key=lambda w: w.port)
    containers = host.containers()
    listeners = host.tcp_listeners()
    on_port = [item for item in listeners if item.port in {w.port for w in wanted}]
    owners = host.socket_owners(item.inode for item in on_port)
    states = []
    for want in wanted:
        holders = _holders(want, on_port, owners, containers or (), stack, host)
        binds = {fam: try_bind(fam, want.port) for fam in FAMILIES}
        if not holders and Bind.IN_USE in binds.values():
            holders.append(Holder(HolderKind.UNKNOWN))
        key = config_key(stack, want, overrides)
        states.append(PortState(want, key, tuple(holders), binds))
    foreign = [s.want for s in states if s.holders and not s.ours]
    busy = {item.port for item in listeners} | {
        p.host_port for c in containers or () for p in c.ports
    }
    moves = free_ports(foreign, busy | {w.port for w in wanted})
    return PortsEvidence(
        stack,
        tuple(
            PortState(s.want, s.key, s.holders, s.binds, moves[s.want.port], True)
            if s.want.port in moves
            else s
            for s in states
        ),
        containers,
    )


def _holders(
    want: HostPort,
    listeners: list[Listener],
    owners: Mapping[int, ProcessInfo | None],
    containers: tuple[Container, ...],
    stack: Stack,
    host: Host,
) -> list[Holder]:
    publishers = [
        c
        for c in containers
        if any(p.host_port == want.port and p.protocol == "tcp" for p in c.ports)
    ]
    holders = [
        Holder(HolderKind.CONTAINER, c.name in stack.container_names, container=c)
        for c in publishers
    ]
    on_port = [item for item in listeners if item.port == want.port]
    # One process may listen on several addresses (127.0.0.1 and [::1], IPv4 and
    # IPv6): one holder naming them all.
    addresses: dict[int, list[str]] = {}
    for item in on_port:
        found = owners.get(item.inode)
        if found is not None:
            addresses.setdefault(found.pid, []).append(item.endpoint)
    seen_pids: set[int] = set()
    for listener in on_port:
        owner = owners.get(listener.inode)
        if owner is not None and owner.name == "docker-proxy" and publishers:
            continue  # already named through the container it forwards to
        if owner is None:
            user = host.username(listener.uid)
            holders.append(
                Holder(
                    HolderKind.UNKNOWN,
                    address=listener.endpoint,
                    uid=listener.uid,
                    user=user,
                )
            )
        elif owner.pid not in seen_pids:  # named with its first address
            seen_pids.add(owner.pid)
            holders.append(
                Holder(
                    HolderKind.PROCESS,
                    process=owner,
                    address=listener.endpoint,
                    addresses=tuple(dict.fromkeys(addresses[owner.pid])),
                )
            )
    return holders


def config_key(stack: Stack, want: HostPort, overrides: Mapping[str, int]) -> str:
    """The [stack.ports] key for this port: the one the config already uses, else
    the service name when it has one fixed port, else service/container-port."""
    keys = stack.override_keys()
    aliases = [
        key
        for key, (service, mapping) in keys.items()
        if (service.name, mapping.container_port) == (want.service, want.container_port)
    ]
    return next((k for k in aliases if k in overrides), min(aliases, key=len))


def free_ports(taken: list[HostPort], busy: set[int]) -> dict[int, int | None]:
    """Where each taken port could move: the next free port, none used twice."""
    moves: dict[int, int | None] = {}
    for want in taken:
        free = free_port_after(want.port, busy)
        if free is not None:
            busy.add(free)
        moves[want.port] = free
    return moves


def free_port_after(port: int, busy: set[int]) -> int | None:
    """The next port above ``port`` that nothing listens on and that can be bound."""
    start = 8001 if port < 1024 else port + 1  # no privileged ports as a suggestion
    for candidate in range(start, min(start + 100, 65536)):
        if candidate in busy:
            continue
        if all(try_bind(f, candidate) is not Bind.IN_USE for f in FAMILIES):
            return candidate
    return None
