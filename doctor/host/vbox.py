"""VirtualBox NAT, from both sides: is this a guest behind VirtualBox's NAT engine, and,
on a host with VBoxManage, which of its running VMs forward the ports Shipyard needs
(that side is :mod:`.vboxmanage`: a guest never imports it).

A NAT guest is "invisible and unreachable from the outside ... unless you set up port
forwarding" (VirtualBox manual 6.3): the 2014 user had Shipyard running in the guest
and still had to forward localhost:8000 to 10.0.2.15:8000 by hand.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.host import netinfo
from shipyard_doctor.records import record
from shipyard_doctor.stacks import HostPort, Stack

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

# systemd-detect-virt's DMI table (src/basic/virt.c) names VirtualBox by the product
# "VirtualBox" or by the vendor "innotek GmbH"; VirtualBox 7 reports the vendor
# "Oracle Corporation", which alone would also match Oracle's own servers.
VBOX_PRODUCT = "VirtualBox"
VBOX_VENDOR = "innotek GmbH"


@record
class Dmi:
    """This machine's DMI product and vendor, by which a VirtualBox guest is known."""

    directory: str
    product_name: str
    sys_vendor: str

    @property
    def is_virtualbox(self) -> bool:
        return self.product_name == VBOX_PRODUCT or self.sys_vendor == VBOX_VENDOR

    def describe(self) -> str:
        return (
            f"DMI ({self.directory}): product_name {self.product_name or '-'!r}, "
            f"sys_vendor {self.sys_vendor or '-'!r}"
        )


def read_dmi(directory: str) -> Dmi | None:
    """The firmware's idea of the machine; None when there is no DMI (Firecracker,
    most ARM boards, containers without /sys/class/dmi)."""
    base = Path(directory)
    if not base.is_dir():
        return None

    def field(name: str) -> str:
        try:
            return (base / name).read_text(errors="replace").strip()
        except OSError:
            return ""

    return Dmi(directory, field("product_name"), field("sys_vendor"))


@record
class NatAddress:
    """An interface addressed as VirtualBox's NAT engine does it, and its gateway."""

    interface: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address


def nat_address(host: Host) -> NatAddress | None:
    """An interface addressed the way VirtualBox's NAT engine does it: 10.0.N.15/24
    with the default route via 10.0.N.2 (N = 2 for the first NIC)."""
    defaults = {r.interface: r.gateway for r in netinfo.routes(host) if r.is_default}
    for iface in netinfo.interfaces(host):
        gateway = defaults.get(iface.name)
        for address in iface.ipv4:
            if (
                gateway is not None
                and address.network.prefixlen == 24
                and address.network.subnet_of(ipaddress.IPv4Network("10.0.0.0/16"))
                and int(address.ip) & 0xFF == 15
                and gateway == address.network[2]
            ):
                return NatAddress(iface.name, address, gateway)
    return None


def browser_ports(stack: Stack, overrides: Mapping[str, int]) -> tuple[HostPort, ...]:
    """The stack's ports a user opens from outside the guest: the UI and port 80/443.

    Redis, etcd and the Docker proxy serve containers and cluster peers; forwarding
    the Docker API (v3's 2375) would hand root on the guest to the host's network.
    """
    return tuple(
        sorted(
            (
                p
                for p in stack.host_ports(overrides)
                if p.service == stack.ui_service or p.container_port in (80, 443)
            ),
            key=lambda p: p.port,
        )
    )


# --- the nat-vbox evidence -----------------------------------------------------------


def forward_port(port: int) -> int:
    """The host port a guest port is forwarded from: VirtualBox runs as the user,
    who may not bind ports below 1024 on the host."""
    return port + 8000 if port < 1024 else port


def natpf_rule(want: HostPort) -> str:
    """The forwarding rule as `VBoxManage controlvm VM natpfN` takes it:
    name,proto,host-ip,host-port,guest-ip,guest-port."""
    return f"shipyard-{want.port},tcp,127.0.0.1,{forward_port(want.port)},,{want.port}"


@record
class GuestEvidence:
    """Inside a VirtualBox NAT guest: the ports the host must forward to it."""

    nat: NatAddress
    ports: tuple[HostPort, ...]

    @property
    def adapter(self) -> int:
        """The NAT adapter's slot: the guest of adapter N is on 10.0.(N+1).0/24."""
        return self.nat.address.network.network_address.packed[2] - 1

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(natpf_rule(p) for p in self.ports)

    def to_data(self) -> dict[str, object]:
        return {
            "role": "guest",
            "interface": self.nat.interface,
            "address": str(self.nat.address),
            "adapter": self.adapter,
            "ports": [p.port for p in self.ports],
            "natpf": list(self.rules),
        }
