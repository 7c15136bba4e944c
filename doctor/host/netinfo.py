"""Network interfaces, their addresses and the IPv4 routing table of this host.

Everything here is read through network-namespace-aware sources: ``ip -json -details
addr`` for every interface's link kind, bridge master, carrier and addresses in one
answer (getifaddrs through psutil when ``ip`` cannot run), and /proc/net/route for
routes. /sys/class/net is deliberately not used: it shows the namespace that mounted
sysfs, not the caller's, so under ``nsenter --net`` it would describe the wrong host.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

LINK_LOCAL = ipaddress.IPv4Network("169.254.0.0/16")


@record
class Interface:
    """A network interface of this host: its kind, link state, bridge and addresses."""

    name: str
    index: int
    kind: str  # loopback, ether, bridge, veth, vlan, ... (the kernel's link kind)
    up: bool  # administratively up
    carrier: bool  # lower layer up (cable in / peer up)
    master: str | None  # the bridge it is a port of
    mac: str
    ipv4: tuple[ipaddress.IPv4Interface, ...]
    ipv6: tuple[ipaddress.IPv6Interface, ...]

    @property
    def is_docker(self) -> bool:
        """A bridge Docker made (docker0, br-<network id>) or a port of one."""
        return _docker_bridge_name(self.name) or (
            self.master is not None and _docker_bridge_name(self.master)
        )

    @property
    def routable_ipv4(self) -> tuple[ipaddress.IPv4Interface, ...]:
        return tuple(a for a in self.ipv4 if a.ip not in LINK_LOCAL)


@record
class Route:
    """One IPv4 route: destination, gateway, interface and metric."""

    interface: str
    destination: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None
    metric: int

    @property
    def is_default(self) -> bool:
        return self.destination.prefixlen == 0


def _docker_bridge_name(name: str) -> bool:
    return name == "docker0" or (name.startswith("br-") and len(name) == 15)


@host_fact
def interfaces(host: Host) -> tuple[Interface, ...]:
    """Every interface of the doctor's network namespace (cached per run)."""
    return _interfaces(host)


@host_fact
def routes(host: Host) -> tuple[Route, ...]:
    """The routes of the doctor's network namespace ([host] proc_dir/net/route)."""
    return parse_routes((host.proc / "net" / "route").read_text())


def _interfaces(host: Host) -> tuple[Interface, ...]:
    links = _links(host)
    if not links:  # no `ip` here (or it failed): the addresses from getifaddrs
        return _interfaces_from_getifaddrs()
    return tuple(_interface(link) for link in links.values())


def _interface(
    link: dict[str, Any],
    ipv4: tuple[ipaddress.IPv4Interface, ...] | None = None,
    ipv6: tuple[ipaddress.IPv6Interface, ...] | None = None,
) -> Interface:
    """An interface from ``ip -json -details addr``'s record of it, with the
    addresses of its ``addr_info`` (or those given: getifaddrs')."""
    flags = set(link.get("flags", ()))
    addresses = link.get("addr_info") or ()
    if ipv4 is None:
        ipv4 = tuple(
            ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
            for a in addresses
            if a.get("family") == "inet" and "local" in a
        )
    if ipv6 is None:
        ipv6 = tuple(
            ipaddress.IPv6Interface(f"{a['local']}/{a['prefixlen']}")
            for a in addresses
            if a.get("family") == "inet6" and "local" in a
        )
    return Interface(
        name=str(link.get("ifname", "")),
        index=int(link.get("ifindex", 0)),
        kind=_kind(link),
        up="UP" in flags,
        carrier="LOWER_UP" in flags and "NO-CARRIER" not in flags,
        master=link.get("master"),
        mac=str(link.get("address", "")),
        ipv4=ipv4,
        ipv6=ipv6,
    )


def _interfaces_from_getifaddrs() -> tuple[Interface, ...]:
    import psutil

    # One getifaddrs() for every interface: netifaces.ifaddresses(name) walks the
    # whole list again for each name, 2 s for the 200 veths of 200 containers.
    return tuple(
        _interface(
            {"ifname": name},
            ipv4=tuple(
                ipaddress.IPv4Interface(f"{a.address}/{a.netmask}")
                for a in addresses
                if a.family == socket.AF_INET and a.address and a.netmask
            ),
            ipv6=tuple(
                ipaddress.IPv6Interface(
                    f"{a.address.split('%')[0]}/{_prefix_length(a.netmask)}"
                )
                for a in addresses
                if a.family == socket.AF_INET6 and a.address and a.netmask
            ),
        )
        for name, addresses in psutil.net_if_addrs().items()
    )


def _prefix_length(netmask: str) -> int:
    """64 for "ffff:ffff:ffff:ffff::" (psutil gives IPv6 masks in address form)."""
    return bin(int(ipaddress.IPv6Address(netmask))).count("1")


def _links(host: Host) -> dict[str, dict[str, Any]]:
    """Every interface's record in ``ip -json -details addr``, by name ({}: no ip)."""
    done = host.run_command(["ip", "-json", "-details", "addr", "show"])
    if not done.ok:
        return {}
    try:
        return {link["ifname"]: link for link in json.loads(done.stdout)}
    except (ValueError, KeyError, TypeError):
        return {}


def _kind(link: dict[str, Any]) -> str:
    info = link.get("linkinfo") or {}
    if info.get("info_kind"):
        return str(info["info_kind"])
    return str(link.get("link_type", "unknown"))


def _hex_ipv4(text: str) -> ipaddress.IPv4Address:
    # /proc/net/route prints addresses as one 32-bit word in host byte order.
    return ipaddress.IPv4Address(socket.inet_ntoa(struct.pack("=I", int(text, 16))))


def parse_routes(text: str) -> tuple[Route, ...]:
    """Routes from the text of /proc/net/route (only routes that are up)."""
    result = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or not int(fields[3], 16) & 0x1:  # RTF_UP
            continue
        network = ipaddress.IPv4Network(
            f"{_hex_ipv4(fields[1])}/{_hex_ipv4(fields[7])}", strict=False
        )
        gateway = _hex_ipv4(fields[2])
        result.append(
            Route(
                interface=fields[0],
                destination=network,
                gateway=None if int(gateway) == 0 else gateway,
                metric=int(fields[6]),
            )
        )
    return tuple(result)


def clashes(host: Host, subnet: ipaddress.IPv4Network, exclude: set[str]) -> list[str]:
    """The addresses and routes of this host (outside the interfaces in ``exclude``
    and their bridge ports) that overlap ``subnet``, described for the user."""
    others = [
        i
        for i in interfaces(host)
        if i.name not in exclude and i.master not in exclude and i.kind != "loopback"
    ]
    found = [
        f"{address.network} on {iface.name} ({address})"
        for iface in others
        for address in iface.routable_ipv4
        if address.network.overlaps(subnet)
    ]
    connected = {(i.name, a.network) for i in others for a in i.routable_ipv4}
    found += [
        f"route {r.destination} via {r.gateway or 'link'} on {r.interface}"
        for r in routes(host)
        if r.interface not in exclude
        and not r.is_default
        and r.destination.overlaps(subnet)
        and (r.interface, r.destination) not in connected
    ]
    return found


def free_subnet(host: Host, used: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A /24 in 10.200-255.0.0 that no interface, route or ``used`` network overlaps."""
    taken = list(used)
    taken += [a.network for i in interfaces(host) for a in i.routable_ipv4]
    taken += [r.destination for r in routes(host) if not r.is_default]
    for third in range(200, 256):
        candidate = ipaddress.IPv4Network(f"10.{third}.0.0/24")
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    return ipaddress.IPv4Network("192.168.254.0/24")
