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

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host import dhcpstate
    from shipyard_doctor.host.dhcpstate import InterfaceFinding
    from shipyard_doctor.host.gateway import Host

VBOX = (
    "in VirtualBox, check that the adapter is attached (NAT, or host-only with its "
    "DHCP server enabled) and its cable connected: VBoxManage showvminfo VM "
    "--machinereadable | grep -E '^(nic|cableconnected)'"
)
STATIC = (
    "or give {} a static address (CoreOS: a .network file in /etc/systemd/network/)"
)
ROOT = "run the probe as root: sudo shipyard-doctor check --probe-dhcp {}"


class DhcpCheck(Check):
    id = "dhcp"
    title = "Network interfaces got an IPv4 address (DHCP)"
    category = "network"

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host import dhcpstate

        unknown, names = dhcpstate.unknown_probes(host)
        if unknown:
            return Result.error(
                f"--probe-dhcp {', '.join(unknown)}: no such interface here "
                f"(interfaces: {', '.join(sorted(names))})",
                hints=["name one of these interfaces: --probe-dhcp IFACE"],
            )
        return _verdict(dhcpstate.dhcp_evidence(host, dhcpstate.probe_wait(host)))


def _verdict(found: dhcpstate.DhcpEvidence) -> Result:
    from shipyard_doctor.host.dhcpstate import describe, describe_addresses

    details, failing = describe(found), found.failing
    healthy, no_link = found.healthy, found.no_link
    if failing:
        reasons = [_why(f) for f in failing]
        names = ", ".join(f.iface.name for f in failing)
        many = f"{len(failing)} interfaces got no IPv4 address: {names}"
        summary = reasons[0] if len(failing) == 1 else many
        details = (reasons if len(failing) > 1 else []) + details
        hints = [h for f in failing for h in _fix_hints(f)]
        return Result.failure(summary, details=details, hints=hints, evidence=found)
    if no_link and not healthy:
        verb = "is" if len(no_link) == 1 else "are"
        return Result.failure(
            f"no network interface has a link: {', '.join(no_link)} {verb} up but "
            "without carrier",
            details=details,
            hints=["connect the cable (or the virtual NIC); " + VBOX],
            evidence=found,
        )
    if not healthy:
        return Result.skipped(
            "no network interface to check: none is up besides lo, Docker's "
            "bridges and bridge ports",
            details=details,
            evidence=found,
        )
    summary = "IPv4 addresses: " + describe_addresses(healthy)
    summary += "".join(f"; {p.describe()}" for p in found.probes.values() if p.offers)
    warnings = [w for f in found.interfaces for w in _warnings(f)]
    if warnings:
        return Result.warning(
            "; ".join(text for text, _ in warnings),
            details=[summary, *details],
            hints=[hint for _, hint in warnings],
            evidence=found,
        )
    return Result.ok(summary, details=details, evidence=found)


def _why(f: InterfaceFinding) -> str:
    from shipyard_doctor.host import dhcpstate

    name, lease, who = f.iface.name, f.lease, dhcpstate.pids(f.clients)
    has = "has no IPv4 address"
    if f.state is dhcpstate.IfaceState.LINK_LOCAL:
        has = f"has only the link-local address {f.iface.ipv4[0].ip}"
    if not f.clients:
        text = f"{name} {has} and no DHCP client is running for it"
    elif lease and (expired := f.expired_at):
        text = (
            f"{name} {has}: its DHCP lease for {lease.address} from "
            f"{lease.server or 'an unknown server'} expired "
            f"{expired} and {who} got no new one"
        )
    elif lease and lease.address:
        text = f"{name} {has}, though {who} holds a lease for it"
    else:
        text = f"{name} {has}: {who} runs, but no DHCP lease arrived"
    return text + (f"; {f.probe.describe()}" if f.probe else "")


def _fix_hints(f: InterfaceFinding) -> list[str]:
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
        hints.append(ROOT.format(name))
    elif not f.probe.offers:
        hints.append(f"no DHCP server answers on {name}: {VBOX}")
    elif f.clients:
        hints.append(
            f"a DHCP server answers on {name}, so the client is at fault: restart it "
            f"and read its log (journalctl -u systemd-networkd, or dhclient -d -v "
            f"{name})"
        )
    return [*hints, STATIC.format(name)]


def _warnings(f: InterfaceFinding) -> list[tuple[str, str]]:
    """(summary, hint) for what is wrong on an interface that does have an address."""
    found = []
    name, lease, probe = f.iface.name, f.lease, f.probe
    if f.orphaned and lease and (expired := f.expired_at):
        text = (
            f"{name}'s DHCP lease for {lease.address} expired "
            f"{expired} and no DHCP client runs to renew it"
        )
        hint = (
            f"start a DHCP client for {name} (`dhclient {name}` / "
            f"`networkctl reconfigure {name}`) or make the address static"
        )
        found.append((text, hint))
    if probe is not None and (probe.error or not probe.offers):
        hint = ROOT.format(name) if probe.error else f"if {name} relies on DHCP: {VBOX}"
        found.append((probe.describe(), hint))
    return found
