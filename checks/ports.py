"""ports: can the selected Shipyard stack publish its fixed host ports?

Shipyard v1 binds 80, 8000 and 6379 on every address; anything already listening on
one of them — on any address, IPv4 or IPv6 — makes its container fail with "port is
already allocated" or "address already in use". For each conflict the check names the
owner (process, or the container publishing it), and tells a previous Shipyard
deployment (a warning: it is already deployed) from a foreign one (a failure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.portstate import PortsEvidence, PortState


class PortsCheck(Check):
    id = "ports"
    title = "Shipyard's host ports are free"
    category = "network"

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host.facts import Unavailable
        from shipyard_doctor.host.portstate import ports_evidence

        found = ports_evidence(host)
        stack = found.stack
        details = [line for port in found.ports for line in _describe(port, host)]
        if isinstance(found.containers, Unavailable):
            details.append("containers not inspected: the Docker API did not answer")
            details.append(f"Docker API: {found.containers.reason}")
        if found.foreign:
            taken = ", ".join(str(p.want.port) for p in found.foreign)
            return Result.failure(
                f"port{'s' if len(found.foreign) > 1 else ''} {taken} already in use "
                f"(needed by Shipyard {stack.name})",
                details=details,
                hints=_hints(found, host),
                evidence=found,
            )
        if found.ours:
            taken = ", ".join(str(p.want.port) for p in found.ours)
            return Result.warning(
                f"Shipyard {stack.name} is already deployed: its containers hold "
                f"{taken}",
                details=details,
                hints=[
                    "nothing to do if that deployment works; to deploy again, "
                    "remove its containers first (docker rm -f "
                    + " ".join(sorted({p.want.container for p in found.ours}))
                    + ")"
                ],
                evidence=found,
            )
        ports = ", ".join(str(p.want.port) for p in found.ports)
        return Result.ok(f"ports {ports} are free", details=details, evidence=found)


def _describe(port: PortState, host: Host) -> list[str]:
    want = port.want
    moved = f", moved from {want.default})" if want.moved else ")"
    label = f"{want.port}/tcp ({want.service}{moved}"
    if port.holders:
        return [f"{label}: {h.describe(host.is_root)}" for h in port.holders]
    return [f"{label}: free" + _bind_note(port, host)]


def _bind_note(port: PortState, host: Host) -> str:
    from shipyard_doctor.host.sockets import Bind

    binds = port.binds.values()
    if Bind.DENIED in binds:
        return (
            f" (no listener; user {host.username(host.euid)} may not bind a "
            "privileged port, which is not a conflict: Docker binds it as root)"
        )
    if all(b is Bind.UNAVAILABLE for b in binds):
        return " (no listener; the bind test was not possible)"
    return ""


def _hints(found: PortsEvidence, host: Host) -> list[str]:
    moved = [
        # TOML needs quotes around a key such as discovery/7001.
        f"{p.key if p.key.isidentifier() else repr(p.key)} = {p.move_to}".replace(
            "'", '"'
        )
        for p in found.foreign
        if p.move_to is not None
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
