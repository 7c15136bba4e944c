"""dhcp: did every connected network interface get an IPv4 address?

In the story the CoreOS VM "would not get an IP address from the DHCP server", and
without one nothing else about Shipyard matters. For each interface that is up with a
link (not lo, not Docker's bridges and their ports) and has no IPv4 address, or only a
169.254/16 one (the fallback of a client that gave up), the check says why: no DHCP
client runs for it, a client runs but no lease arrived, or the lease expired. It names
the client (pid, command line) and the lease it read. With ``--probe-dhcp IFACE`` (and
only then) it also asks the network: one DHCPDISCOVER, and the OFFERs that come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shipyard_doctor.host import dhcp, dhcpwire, netinfo
from shipyard_doctor.host.dhcp import DhcpClient, Lease
from shipyard_doctor.host.dhcpwire import ProbeResult
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.netinfo import Interface
from shipyard_doctor.model import Check, Result

#: How long the probe listens. Not 3 s: dnsmasq pings an address for 3 s before
#: its first OFFER to a new client (measured: the OFFER arrives after 3.0-3.1 s).
PROBE_SECONDS = 4.0
FAILING = ("no-address", "link-local")
VBOX = (
    "in VirtualBox, check that the adapter is attached (NAT, or host-only with its "
    "DHCP server enabled) and its cable connected: VBoxManage showvminfo VM "
    "--machinereadable | grep -E '^(nic|cableconnected)'"
)


@dataclass(frozen=True)
class Finding:
    """One interface as the check sees it."""

    iface: Interface
    state: str  # ok, no-address, link-local, no-carrier, skip
    clients: tuple[DhcpClient, ...]  # the clients that serve it
    lease: Lease | None
    probe: ProbeResult | None


class DhcpCheck(Check):
    id = "dhcp"
    title = "Network interfaces got an IPv4 address (DHCP)"
    category = "network"

    def run(self, host: Host) -> Result:
        interfaces = netinfo.interfaces(host)
        by_name = {i.name: i for i in interfaces}
        unknown = [n for n in host.probe_dhcp if n not in by_name]
        if unknown:
            return Result.error(
                f"--probe-dhcp {', '.join(unknown)}: no such interface here "
                f"(interfaces: {', '.join(sorted(by_name))})",
                hints=["name one of these interfaces: --probe-dhcp IFACE"],
            )
        now = datetime.now(UTC)
        clients = dhcp.clients(host)
        scan = dhcp.leases(host, interfaces)
        wait = min(PROBE_SECONDS, host.config.checks.timeout * 0.8)
        targets = [by_name[n] for n in dict.fromkeys(host.probe_dhcp)]
        probes = {p.interface: p for p in dhcpwire.probe(host, targets, wait)}
        found = [
            Finding(
                i,
                _state(i),
                tuple(c for c in clients if c.serves(i.name)),
                _lease_for(i, scan.leases),
                probes.get(i.name),
            )
            for i in interfaces
        ]
        details = [f"DHCP client: {_client(c)}" for c in clients] or [
            "no DHCP client process runs in this network namespace"
        ]
        details.append("leases looked for in: " + ", ".join(scan.searched))
        details += [f"lease file not readable: {u}" for u in scan.unreadable]
        for f in found:
            if f.state != "skip":
                details.append(_evidence(f, now))
            if f.probe is not None and f.state not in FAILING:
                details.append(f.probe.describe())  # else it is in the reason
        data = {
            "interfaces": [_data(f, now) for f in found],
            "clients": [c.to_dict() for c in clients],
            "unreadable": list(scan.unreadable),
        }
        return _verdict(found, probes, details, data, now)


def _verdict(
    found: list[Finding],
    probes: dict[str, ProbeResult],
    details: list[str],
    data: dict[str, object],
    now: datetime,
) -> Result:
    failing = [f for f in found if f.state in FAILING]
    healthy = [f for f in found if f.state == "ok"]
    no_link = [f.iface.name for f in found if f.state == "no-carrier"]
    if failing:
        reasons = [_why(f, now) for f in failing]
        summary = (
            reasons[0]
            if len(failing) == 1
            else (
                f"{len(failing)} interfaces got no IPv4 address: "
                + ", ".join(f.iface.name for f in failing)
            )
        )
        hints = [h for f in failing for h in _fix_hints(f)]
        return Result.failure(
            summary,
            details=(reasons if len(failing) > 1 else []) + details,
            hints=hints,
            data=data,
        )
    if no_link and not healthy:
        verb = "is" if len(no_link) == 1 else "are"
        return Result.failure(
            f"no network interface has a link: {', '.join(no_link)} {verb} up but "
            "without carrier",
            details=details,
            hints=["connect the cable (or the virtual NIC); " + VBOX],
            data=data,
        )
    if not healthy:
        return Result.skipped(
            "no network interface to check: none is up besides lo, Docker's "
            "bridges and bridge ports",
            details=details,
            data=data,
        )
    summary = "IPv4 addresses: " + ", ".join(
        f"{f.iface.name} {' '.join(map(str, f.iface.routable_ipv4))}" for f in healthy
    )
    summary += "".join(f"; {p.describe()}" for p in probes.values() if p.offers)
    warnings = [w for f in found for w in _warnings(f, now)]
    if warnings:
        return Result.warning(
            "; ".join(text for text, _ in warnings),
            details=[summary, *details],
            hints=[hint for _, hint in warnings],
            data=data,
        )
    return Result.ok(summary, details=details, data=data)


def _state(iface: Interface) -> str:
    if iface.kind == "loopback" or iface.is_docker or iface.master or not iface.up:
        return "skip"  # a bridge port's address belongs on its bridge
    if not iface.carrier:
        return "no-carrier"
    if iface.routable_ipv4:
        return "ok"
    return "link-local" if iface.ipv4 else "no-address"


def _lease_for(iface: Interface, leases: tuple[Lease, ...]) -> Lease | None:
    """The newest lease recorded for the interface: the one that expires last (a
    stale file from an old client may sit next to the running client's)."""
    mine = [le for le in leases if le.interface == iface.name]
    mine = mine or [le for le in leases if le.interface is None and _holds(iface, le)]
    return max(reversed(mine), key=lambda le: le.expire or _NEVER, default=None)


_NEVER = datetime.min.replace(tzinfo=UTC)


def _holds(iface: Interface, lease: Lease) -> bool:
    return any(a.ip == lease.address for a in iface.ipv4)


def _client(c: DhcpClient) -> str:
    serves = ", ".join(c.interfaces) or (
        "what its configuration names" if c.name in dhcp.MANAGERS else "all"
    )
    hidden = "" if c.same_netns else " (its network namespace is hidden: run as root)"
    return f"{c.describe()} [serves {serves}]{hidden}"


def _pids(clients: tuple[DhcpClient, ...]) -> str:
    return ", ".join(f"{c.name} (pid {c.process.pid})" for c in clients)


def _evidence(f: Finding, now: datetime) -> str:
    addresses = " ".join(map(str, f.iface.ipv4))
    text = {
        "ok": f"{f.iface.name}: {addresses}",
        "no-address": f"{f.iface.name}: up, with a link, no IPv4 address",
        "link-local": f"{f.iface.name}: up, with a link, only link-local {addresses}",
        "no-carrier": f"{f.iface.name}: up but no carrier (no link)",
    }[f.state]
    if f.state != "no-carrier":
        text += f"; DHCP client: {_pids(f.clients) or 'none'}"
        if f.lease:
            text += f"; {f.lease.describe(now)}"
        else:
            text += "; no DHCP lease found" + (" (static?)" if f.state == "ok" else "")
    return text


def _why(f: Finding, now: datetime) -> str:
    name, lease = f.iface.name, f.lease
    has = (
        f"has only the link-local address {f.iface.ipv4[0].ip}"
        if f.state == "link-local"
        else "has no IPv4 address"
    )
    if not f.clients:
        text = f"{name} {has} and no DHCP client is running for it"
    elif lease and lease.expire and lease.expired(now):
        text = (
            f"{name} {has}: its DHCP lease for {lease.address} from "
            f"{lease.server or 'an unknown server'} expired "
            f"{dhcp.format_time(lease.expire)} and {_pids(f.clients)} got no new one"
        )
    elif lease and lease.address:
        text = f"{name} {has}, though {_pids(f.clients)} holds a lease for it"
    else:
        text = f"{name} {has}: {_pids(f.clients)} runs, but no DHCP lease arrived"
    return text + (f"; {f.probe.describe()}" if f.probe else "")


def _fix_hints(f: Finding) -> list[str]:
    name = f.iface.name
    hints = []
    if not f.clients:
        hints.append(
            f"no DHCP client is running for {name}: start one, e.g. `dhclient {name}`"
            f" / `networkctl reconfigure {name}` (systemd-networkd, as on CoreOS)"
        )
    if f.probe is None:
        if f.clients:
            hints.append(
                f"is a DHCP server answering on {name}? ask it (as root): "
                f"shipyard-doctor check --only dhcp --probe-dhcp {name}"
            )
    elif f.probe.error:
        hints.append(_root_hint(name))
    elif not f.probe.offers:
        hints.append(f"no DHCP server answers on {name}: {VBOX}")
    elif f.clients:
        hints.append(
            f"a DHCP server answers on {name}, so the client is at fault: restart it "
            f"and read its log (journalctl -u systemd-networkd, or dhclient -d -v "
            f"{name})"
        )
    hints.append(
        f"or give {name} a static address (CoreOS: a .network file in "
        "/etc/systemd/network/)"
    )
    return hints


def _warnings(f: Finding, now: datetime) -> list[tuple[str, str]]:
    """(summary, hint) for what is wrong on an interface that does have an address."""
    found = []
    name, lease, probe = f.iface.name, f.lease, f.probe
    if (
        f.state == "ok"
        and not f.clients
        and lease
        and lease.expire
        and lease.expired(now)
        and _holds(f.iface, lease)
    ):
        found.append(
            (
                f"{name}'s DHCP lease for {lease.address} expired "
                f"{dhcp.format_time(lease.expire)} and no DHCP client runs to "
                "renew it",
                f"start a DHCP client for {name} (`dhclient {name}` / "
                f"`networkctl reconfigure {name}`) or make the address static",
            )
        )
    if probe is not None and probe.error:
        found.append((probe.describe(), _root_hint(name)))
    elif probe is not None and not probe.offers:
        found.append((probe.describe(), f"if {name} relies on DHCP: {VBOX}"))
    return found


def _root_hint(name: str) -> str:
    return f"run the probe as root: sudo shipyard-doctor check --probe-dhcp {name}"


def _data(f: Finding, now: datetime) -> dict[str, object]:
    return {
        "name": f.iface.name,
        "state": f.state,
        "ipv4": [str(a) for a in f.iface.ipv4],
        "clients": [c.process.pid for c in f.clients],
        "lease": f.lease.to_dict(now) if f.lease else None,
        "probe": f.probe.to_dict() if f.probe else None,
    }
