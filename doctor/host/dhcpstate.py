"""Each network interface as the dhcp check judges it: its state, the DHCP clients
that serve it, its newest lease and the probe's answer.

:func:`dhcp_evidence` gathers it from :mod:`.netinfo`, :mod:`.dhcp` and
:mod:`.dhcpwire`; the check dhcp words the verdict, the fix dhcp reads
:class:`DhcpEvidence` (which interfaces failed, which clients serve them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host import dhcp, netinfo
from shipyard_doctor.host.dhcp import DhcpClient, Lease, LeaseScan
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.dhcpwire import ProbeResult
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.netinfo import Interface

_NEVER = datetime.min.replace(tzinfo=UTC)
#: How long the probe listens. Not 3 s: dnsmasq pings an address for 3 s before
#: its first OFFER to a new client (measured: the OFFER arrives after 3.0-3.1 s).
PROBE_SECONDS = 4.0


class IfaceState(StrEnum):
    OK = "ok"
    NO_ADDRESS = "no-address"
    LINK_LOCAL = "link-local"  # only 169.254/16: the client gave up
    NO_CARRIER = "no-carrier"
    SKIP = "skip"  # lo, Docker's bridges, bridge ports, interfaces that are down

    @property
    def failing(self) -> bool:
        return self in (IfaceState.NO_ADDRESS, IfaceState.LINK_LOCAL)


def iface_state(iface: Interface) -> IfaceState:
    if iface.kind == "loopback" or iface.is_docker or iface.master or not iface.up:
        return IfaceState.SKIP  # a bridge port's address belongs on its bridge
    if not iface.carrier:
        return IfaceState.NO_CARRIER
    if iface.routable_ipv4:
        return IfaceState.OK
    return IfaceState.LINK_LOCAL if iface.ipv4 else IfaceState.NO_ADDRESS


def holds(iface: Interface, lease: Lease) -> bool:
    return any(a.ip == lease.address for a in iface.ipv4)


def lease_for(iface: Interface, leases: Sequence[Lease]) -> Lease | None:
    """The newest lease recorded for the interface: the one that expires last (a
    stale file from an old client may sit next to the running client's)."""
    mine = [le for le in leases if le.interface == iface.name]
    mine = mine or [le for le in leases if le.interface is None and holds(iface, le)]
    return max(reversed(mine), key=lambda le: le.expire or _NEVER, default=None)


@record
class InterfaceFinding:
    """One interface as the dhcp check judges it: its state, the clients that serve
    it, its newest lease and the probe's answer."""

    iface: Interface
    state: IfaceState
    clients: tuple[DhcpClient, ...]  # the clients that serve it
    lease: Lease | None
    probe: ProbeResult | None
    lease_expired: bool = False  # when the evidence was gathered

    @property
    def orphaned(self) -> bool:
        """It still uses the address of an expired lease, and no client renews it."""
        return (
            self.state is IfaceState.OK
            and not self.clients
            and self.lease_expired
            and self.lease is not None
            and holds(self.iface, self.lease)
        )

    @property
    def expired_at(self) -> str | None:
        """When the lease it holds expired (formatted); None when it did not."""
        lease = self.lease
        if not (self.lease_expired and lease and lease.expire):
            return None
        return dhcp.format_time(lease.expire)

    def to_data(self, now: datetime) -> dict[str, object]:
        return {
            "name": self.iface.name,
            "state": self.state.value,
            "ipv4": [str(a) for a in self.iface.ipv4],
            "clients": [c.process.pid for c in self.clients],
            "lease": self.lease.to_dict(now) if self.lease else None,
            "probe": self.probe.to_dict() if self.probe else None,
        }


@record
class LeaseRequest:
    """What the fix needs of a failed interface: its name and its clients."""

    interface: str
    clients: tuple[DhcpClient, ...]


@record
class DhcpEvidence:
    """The dhcp evidence: every interface judged, the DHCP clients running, the lease
    files read and the probes' answers."""

    interfaces: tuple[InterfaceFinding, ...]
    clients: tuple[DhcpClient, ...]
    scan: LeaseScan
    probes: Mapping[str, ProbeResult]
    now: datetime

    @property
    def failing(self) -> tuple[InterfaceFinding, ...]:
        return tuple(f for f in self.interfaces if f.state.failing)

    def having(self, state: IfaceState) -> tuple[InterfaceFinding, ...]:
        return tuple(f for f in self.interfaces if f.state is state)

    @property
    def healthy(self) -> tuple[InterfaceFinding, ...]:
        return self.having(IfaceState.OK)

    @property
    def no_link(self) -> list[str]:
        """The names of the interfaces that are up without carrier."""
        return [f.iface.name for f in self.having(IfaceState.NO_CARRIER)]

    @property
    def requests(self) -> tuple[LeaseRequest, ...]:
        return tuple(LeaseRequest(f.iface.name, f.clients) for f in self.failing)

    def to_data(self) -> dict[str, Any]:
        return {
            "interfaces": [f.to_data(self.now) for f in self.interfaces],
            "clients": [c.to_dict() for c in self.clients],
            "unreadable": list(self.scan.unreadable),
        }


def requests_from_data(data: Mapping[str, Any]) -> tuple[LeaseRequest, ...]:
    """The failed interfaces of a result's JSON ``data`` (a saved report)."""
    from shipyard_doctor.host.gateway import ProcessInfo

    clients = {
        c["pid"]: DhcpClient(
            ProcessInfo(c["pid"], c["name"], tuple(c["cmdline"]), None),
            tuple(c["interfaces"]),
            c.get("lease_file"),
            None,
        )
        for c in data.get("clients", ())
    }
    return tuple(
        LeaseRequest(row["name"], tuple(clients[p] for p in row["clients"]))
        for row in data.get("interfaces", ())
        if IfaceState(row["state"]).failing
    )


def probe_wait(host: Host) -> float:
    """How long the probe listens: within the check's timeout."""
    return min(PROBE_SECONDS, host.config.checks.timeout * 0.8)


def unknown_probes(host: Host) -> tuple[list[str], set[str]]:
    """The interfaces named with --probe-dhcp that are not here, and those that are."""
    names = {i.name for i in netinfo.interfaces(host)}
    return [n for n in host.probe_dhcp if n not in names], names


def _probe(
    host: Host, targets: Sequence[Interface], wait: float
) -> Sequence[ProbeResult]:
    """--probe-dhcp's DHCPDISCOVERs; without it, the wire format is not loaded."""
    if not targets:
        return ()
    from shipyard_doctor.host import dhcpwire

    return dhcpwire.probe(host, targets, wait)


def dhcp_evidence(host: Host, probe_wait: float) -> DhcpEvidence:
    """Every interface of this network namespace, judged; probed (one DHCPDISCOVER)
    only on the interfaces named with --probe-dhcp."""
    interfaces = netinfo.interfaces(host)
    by_name = {i.name: i for i in interfaces}
    clients = dhcp.clients(host)
    scan = dhcp.leases(host, interfaces)
    targets = [by_name[n] for n in dict.fromkeys(host.probe_dhcp)]
    probes = {p.interface: p for p in _probe(host, targets, probe_wait)}
    now = datetime.now(UTC)
    found = []
    for i in interfaces:
        lease = lease_for(i, scan.leases)
        expired = bool(lease and lease.expire and lease.expired(now))
        serving = tuple(c for c in clients if c.serves(i.name))
        state = iface_state(i)
        found.append(
            InterfaceFinding(i, state, serving, lease, probes.get(i.name), expired)
        )
    return DhcpEvidence(tuple(found), clients, scan, probes, now)


def pids(clients: Sequence[DhcpClient]) -> str:
    """'dhclient (pid 42), udhcpc (pid 43)'."""
    return ", ".join(f"{c.name} (pid {c.process.pid})" for c in clients)


def describe_client(c: DhcpClient) -> str:
    serves = ", ".join(c.interfaces) or (
        "what its configuration names" if c.name in dhcp.MANAGERS else "all"
    )
    hidden = "" if c.same_netns else " (its network namespace is hidden: run as root)"
    return f"{c.describe()} [serves {serves}]{hidden}"


def describe_interface(f: InterfaceFinding, now: datetime) -> str:
    addresses = " ".join(map(str, f.iface.ipv4))
    name = f.iface.name
    text = {
        IfaceState.OK: f"{name}: {addresses}",
        IfaceState.NO_ADDRESS: f"{name}: up, with a link, no IPv4 address",
        IfaceState.LINK_LOCAL: f"{name}: up, with a link, only link-local {addresses}",
        IfaceState.NO_CARRIER: f"{name}: up but no carrier (no link)",
    }[f.state]
    if f.state is not IfaceState.NO_CARRIER:
        text += f"; DHCP client: {pids(f.clients) or 'none'}"
        if f.lease:
            text += f"; {f.lease.describe(now)}"
        else:
            static = " (static?)" if f.state is IfaceState.OK else ""
            text += f"; no DHCP lease found{static}"
    return text


def describe_addresses(findings: Sequence[InterfaceFinding]) -> str:
    """'eth0 192.0.2.5, eth1 198.51.100.7 198.51.100.8': the routable addresses."""
    return ", ".join(
        f"{f.iface.name} {' '.join(map(str, f.iface.routable_ipv4))}" for f in findings
    )


def describe(found: DhcpEvidence) -> list[str]:
    """The evidence: clients, where leases were looked for, each interface."""
    lines = [f"DHCP client: {describe_client(c)}" for c in found.clients] or [
        "no DHCP client process runs in this network namespace"
    ]
    lines.append("leases looked for in: " + ", ".join(found.scan.searched))
    lines += [f"lease file not readable: {u}" for u in found.scan.unreadable]
    for f in found.interfaces:
        if f.state is not IfaceState.SKIP:
            lines.append(describe_interface(f, found.now))
        if f.probe is not None and not f.state.failing:
            lines.append(f.probe.describe())  # else it is in the reason
    return lines
