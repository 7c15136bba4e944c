"""Collectors for sockets, interfaces and routes, DHCP and Docker's nat rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard_doctor.report.collect import CollectContext, Found, SectionStatus

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

#: Ports of the Docker API besides the stack's (the agent's 4243, dockerd's 2375/6).
API_PORTS = (2375, 2376, 4243)


def listeners(host: Host, context: CollectContext) -> Found:
    stack = host.stack()
    ports = {
        p.port: f"{p.service} ({stack.name})"
        for p in stack.host_ports(host.config.stack.ports)
    }
    for port in API_PORTS:
        ports.setdefault(port, "Docker API")
    found = Found()
    mine = [lst for lst in host.tcp_listeners() if lst.port in ports]
    owners = host.socket_owners([lst.inode for lst in mine])
    rows: list[dict[str, Any]] = []
    for lst in sorted(mine, key=lambda x: (x.port, x.address)):
        owner = owners.get(lst.inode)
        rows.append(
            {
                "endpoint": lst.endpoint,
                "port": lst.port,
                "wanted_by": ports[lst.port],
                "owner": owner.describe() if owner else None,
                "uid": lst.uid,
            }
        )
        if owner is None and not host.is_root:
            found.cannot_read(
                f"owner of {lst.endpoint}",
                f"socket of uid {lst.uid}; only root sees other users' processes",
            )
    free = sorted(set(ports) - {r["port"] for r in rows})
    found.summary = f"{len(rows)} listeners on {len(ports)} watched ports; free: " + (
        ", ".join(map(str, free)) or "none"
    )
    found.data = {"watched": {str(k): v for k, v in ports.items()}, "listeners": rows}
    found.text = "\n".join(
        f"{r['endpoint']} ({r['wanted_by']}): "
        + (r["owner"] or f"owner not visible (uid {r['uid']})")
        for r in rows
    ) or "no listener on " + ", ".join(map(str, sorted(ports)))
    return found


def interfaces(host: Host, context: CollectContext) -> Found:
    from shipyard_doctor.host.netinfo import interfaces as read_interfaces
    from shipyard_doctor.host.netinfo import routes

    found = Found()
    rows: list[dict[str, Any]] = []
    for iface in read_interfaces(host):
        rows.append(
            {
                "name": iface.name,
                "kind": iface.kind,
                "up": iface.up,
                "carrier": iface.carrier,
                "master": iface.master,
                "mac": iface.mac,
                "ipv4": [str(a) for a in iface.ipv4],
                "ipv6": [str(a) for a in iface.ipv6],
            }
        )
    try:
        table = [
            {
                "interface": r.interface,
                "destination": str(r.destination),
                "gateway": str(r.gateway) if r.gateway else None,
                "metric": r.metric,
            }
            for r in routes(host)
        ]
    except OSError as exc:
        table = []
        found.cannot_read(str(host.proc / "net" / "route"), exc.strerror or str(exc))
    found.summary = f"{len(rows)} interfaces, {len(table)} IPv4 routes"
    found.data = {"interfaces": rows, "routes": table}
    lines = [
        f"{r['name']} ({r['kind']}, {'up' if r['up'] else 'down'}"
        f"{', carrier' if r['carrier'] else ', no carrier'}"
        f"{', port of ' + r['master'] if r['master'] else ''}) {r['mac']} "
        + " ".join(r["ipv4"] + r["ipv6"])
        for r in rows
    ]
    lines += ["", "routes:"]
    lines += [
        f"  {r['destination']} via {r['gateway'] or 'direct'} dev {r['interface']} "
        f"metric {r['metric']}"
        for r in table
    ]
    found.text = "\n".join(lines)
    return found


def dhcp(host: Host, context: CollectContext) -> Found:
    from shipyard_doctor.host import dhcp as facts
    from shipyard_doctor.host.netinfo import interfaces as read_interfaces

    found = Found()
    now = datetime.now(UTC)
    clients = facts.clients(host)
    scan = facts.leases(host, read_interfaces(host))
    for item in scan.unreadable:
        what, _, why = item.partition(": ")
        found.cannot_read(what, why)
    found.summary = f"{len(clients)} DHCP clients, {len(scan.leases)} leases"
    found.data = {
        "clients": [c.to_dict() for c in clients],
        "leases": [
            {**lease.to_dict(now), "interface": lease.interface}
            for lease in scan.leases
        ],
    }
    lines = ["clients:"] + [f"  {c.describe()}" for c in clients]
    if not clients:
        lines.append("  none")
    lines.append("leases:")
    lines += [f"  {lease.describe(now)}" for lease in scan.leases] or ["  none"]
    found.text = "\n".join(lines)
    return found


def nat(host: Host, context: CollectContext) -> Found:
    from shipyard_doctor.host.iptables import docker_dnats, saved_rules

    found = Found()
    saved = saved_rules(host)
    if saved.ruleset is None:
        why = saved.command.describe()
        if not host.is_root:
            why = "iptables-save needs root"
        found.cannot_read("iptables-save", why)
        found.summary = "nat rules not read"
        found.status = SectionStatus.SKIPPED
        return found
    table = saved.ruleset.table("nat")
    if not table.has_chain("DOCKER"):
        found.summary = "no nat DOCKER chain"
    dnats = docker_dnats(table)
    jumps = [
        r.line
        for chain in ("PREROUTING", "OUTPUT")
        for r in table.jumps(chain, ["DOCKER"])
    ]
    masquerade = [
        r.line for r in table.chain("POSTROUTING") if r.target == "MASQUERADE"
    ]
    if table.has_chain("DOCKER"):
        found.summary = (
            f"{len(dnats)} DNAT rules, {len(jumps)} jumps to DOCKER, "
            f"{len(masquerade)} MASQUERADE rules"
        )
    found.data = {
        "backend": saved.ruleset.backend,
        "docker_chain": table.has_chain("DOCKER"),
        "dnat": [
            f"{d.protocol} {d.host_port} -> {d.destination}:{d.container_port}"
            for d in dnats
        ],
        "jumps": jumps,
        "masquerade": masquerade,
    }
    found.text = "\n".join(
        [f"backend: {saved.ruleset.backend or '?'}", "jumps to DOCKER:"]
        + [f"  {j}" for j in jumps]
        + ["DNAT in DOCKER:"]
        + [f"  {d}" for d in found.data["dnat"]]
        + ["MASQUERADE:"]
        + [f"  {m}" for m in masquerade]
    )
    lines = [ln for ln in saved.command.stdout.splitlines()]
    start = next((i for i, ln in enumerate(lines) if ln == "*nat"), None)
    if start is not None:
        end = next(
            (i for i in range(start, len(lines)) if lines[i] == "COMMIT"), len(lines)
        )
        found.files["iptables-nat.txt"] = "\n".join(lines[start : end + 1]) + "\n"
    return found
