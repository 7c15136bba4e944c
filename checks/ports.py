"""ports: can the selected Shipyard stack publish its fixed host ports?

Shipyard v1 binds 80, 8000 and 6379 on every address; anything already listening on
one of them — on any address, IPv4 or IPv6 — makes its container fail with "port is
already allocated" or "address already in use". For each conflict the check names the
owner (process, or the container publishing it), and tells a previous Shipyard
deployment (a warning: it is already deployed) from a foreign one (a failure).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from shipyard_doctor.host.gateway import Container, Host, ProcessInfo
from shipyard_doctor.host.sockets import Bind, Listener, try_bind
from shipyard_doctor.model import Check, Result
from shipyard_doctor.stacks import HostPort, Stack


@dataclass(frozen=True)
class Holder:
    text: str  # one line naming the owner, for the user
    shipyard: bool  # a container of the selected Shipyard stack
    data: dict[str, object]


class PortsCheck(Check):
    id = "ports"
    title = "Shipyard's host ports are free"
    category = "network"

    def run(self, host: Host) -> Result:
        stack = host.stack()
        wanted = sorted(stack.host_ports(host.config.stack.ports), key=lambda w: w.port)
        containers = host.containers()
        listeners = host.tcp_listeners()
        on_port = [item for item in listeners if item.port in {w.port for w in wanted}]
        owners = host.socket_owners(item.inode for item in on_port)
        names = stack.container_names

        details: list[str] = []
        ports_data: list[dict[str, object]] = []
        foreign: list[HostPort] = []
        ours: list[HostPort] = []
        for want in wanted:
            holders = _holders(want, on_port, owners, containers, names, host)
            binds = {fam: try_bind(fam, want.port) for fam in _families()}
            if not holders and Bind.IN_USE in binds.values():
                holders.append(
                    Holder(
                        "an unidentified socket (not listening) is bound to it",
                        False,
                        {"kind": "unknown"},
                    )
                )
            label = f"{want.port}/tcp ({want.service}" + (
                f", moved from {want.default})" if want.moved else ")"
            )
            if holders:
                for holder in holders:
                    details.append(f"{label}: {holder.text}")
                (ours if all(h.shipyard for h in holders) else foreign).append(want)
            else:
                details.append(f"{label}: free" + _bind_note(binds, host))
            ports_data.append(
                {
                    "port": want.port,
                    "service": want.service,
                    "container": want.container,
                    "container_port": want.container_port,
                    "key": _config_key(stack, want, host.config.stack.ports),
                    "free": not holders,
                    "bind": {_family_name(f): b.value for f, b in binds.items()},
                    "holders": [h.data for h in holders],
                }
            )
        if containers is None:
            details.append("containers not inspected: the Docker API did not answer")
        data = {"stack": stack.name, "ports": ports_data}
        if foreign:
            taken = ", ".join(str(w.port) for w in foreign)
            busy = {item.port for item in listeners} | {
                p.host_port for c in containers or () for p in c.ports
            }
            moves = _moves(foreign, busy | {w.port for w in wanted})
            for entry in ports_data:
                if entry["port"] in moves:
                    entry["move_to"] = moves[entry["port"]]  # type: ignore[index]
            return Result.failure(
                f"port{'s' if len(foreign) > 1 else ''} {taken} already in use "
                f"(needed by Shipyard {stack.name})",
                details=details,
                hints=_hints(foreign, moves, host),
                data=data,
            )
        if ours:
            taken = ", ".join(str(w.port) for w in ours)
            return Result.warning(
                f"Shipyard {stack.name} is already deployed: its containers hold "
                f"{taken}",
                details=details,
                hints=[
                    "nothing to do if that deployment works; to deploy again, "
                    "remove its containers first (docker rm -f "
                    + " ".join(sorted({w.container for w in ours}))
                    + ")"
                ],
                data=data,
            )
        ports = ", ".join(str(w.port) for w in wanted)
        return Result.ok(f"ports {ports} are free", details=details, data=data)


def _families() -> tuple[int, ...]:
    return (socket.AF_INET, socket.AF_INET6)


def _family_name(family: int) -> str:
    return "ipv4" if family == socket.AF_INET else "ipv6"


def _holders(
    want: HostPort,
    listeners: list[Listener],
    owners: dict[int, ProcessInfo | None],
    containers: tuple[Container, ...] | None,
    stack_names: frozenset[str],
    host: Host,
) -> list[Holder]:
    holders: list[Holder] = []
    publishers = [
        c
        for c in containers or ()
        if any(p.host_port == want.port and p.protocol == "tcp" for p in c.ports)
    ]
    for container in publishers:
        shipyard = container.name in stack_names
        note = " — a previous Shipyard deployment" if shipyard else ""
        holders.append(
            Holder(
                f"published by container {container.name} (image {container.image}, "
                f"{container.state}){note}",
                shipyard,
                {
                    "kind": "container",
                    "name": container.name,
                    "image": container.image,
                    "id": container.id[:12],
                    "shipyard": shipyard,
                },
            )
        )
    on_port = [item for item in listeners if item.port == want.port]
    # One process may listen on several addresses (127.0.0.1 and [::1]): one holder
    # naming them all.
    addresses: dict[int, list[str]] = {}
    for item in on_port:
        owner = owners.get(item.inode)
        if owner is not None:
            addresses.setdefault(owner.pid, []).append(item.endpoint)
    seen_pids: set[int] = set()
    for listener in on_port:
        owner = owners.get(listener.inode)
        if owner is not None and owner.name == "docker-proxy" and publishers:
            continue  # already named through the container it forwards to
        if owner is not None:
            if owner.pid in seen_pids:
                continue  # named with its first address
            seen_pids.add(owner.pid)
            holders.append(
                Holder(
                    f"{owner.describe()} listens on "
                    f"{', '.join(dict.fromkeys(addresses[owner.pid]))}",
                    False,
                    {
                        "kind": "process",
                        "pid": owner.pid,
                        "name": owner.name,
                        "cmdline": list(owner.cmdline),
                        "user": owner.user,
                        "address": listener.endpoint,
                        "addresses": list(dict.fromkeys(addresses[owner.pid])),
                    },
                )
            )
        else:
            user = host.username(listener.uid)
            why = "" if host.is_root else " (run as root to see which process)"
            holders.append(
                Holder(
                    f"a process of user {user} listens on {listener.endpoint}; "
                    f"its owner is not visible{why}",
                    False,
                    {
                        "kind": "unknown",
                        "uid": listener.uid,
                        "user": user,
                        "address": listener.endpoint,
                    },
                )
            )
    return holders


def _bind_note(binds: dict[int, Bind], host: Host) -> str:
    if Bind.DENIED in binds.values():
        return (
            f" (no listener; user {host.username(host.euid)} may not bind a "
            "privileged port, which is not a conflict: Docker binds it as root)"
        )
    if all(b is Bind.UNAVAILABLE for b in binds.values()):
        return " (no listener; the bind test was not possible)"
    return ""


def _moves(foreign: list[HostPort], busy: set[int]) -> dict[int, int | None]:
    """Where each taken port could move: the next free port, none used twice."""
    moves: dict[int, int | None] = {}
    for want in foreign:
        free = _free_port_after(want.port, busy)
        if free is not None:
            busy.add(free)
        moves[want.port] = free
    return moves


def _config_key(stack: Stack, want: HostPort, overrides: Mapping[str, int]) -> str:
    """The [stack.ports] key for this port: the one the config already uses, else
    the service name when it has one fixed port, else service/container-port."""
    keys = stack.override_keys()
    aliases = [
        key
        for key, (service, mapping) in keys.items()
        if (service.name, mapping.container_port) == (want.service, want.container_port)
    ]
    return next((k for k in aliases if k in overrides), min(aliases, key=len))


def _hints(
    foreign: list[HostPort], moves: Mapping[int, int | None], host: Host
) -> list[str]:
    overrides = host.config.stack.ports
    keys = [_config_key(host.stack(), want, overrides) for want in foreign]
    moved = [
        # TOML needs quotes around a key such as discovery/7001.
        f"{key if key.isidentifier() else repr(key)} = {moves[want.port]}".replace(
            "'", '"'
        )
        for want, key in zip(foreign, keys, strict=True)
        if moves.get(want.port) is not None
    ]
    hints = ["stop the program or container that holds the port (see above)"]
    if moved:
        hints.append(
            "or move Shipyard out of the way in the doctor's config: [stack.ports] "
            + ", ".join(moved)
            + " (free now)"
        )
    if not host.is_root:
        hints.append("run as root (sudo) to name owners that are not your processes")
    return hints


def _free_port_after(port: int, busy: set[int]) -> int | None:
    """The next port above ``port`` that nothing listens on and that can be bound."""
    start = 8001 if port < 1024 else port + 1  # no privileged ports as a suggestion
    for candidate in range(start, min(start + 100, 65536)):
        if candidate in busy:
            continue
        if all(try_bind(f, candidate) is not Bind.IN_USE for f in _families()):
            return candidate
    return None
