"""VirtualBox NAT, from both sides: is this a guest behind VirtualBox's NAT engine, and,
on a host with VBoxManage, which of its running VMs forward the ports Shipyard needs.

A NAT guest is "invisible and unreachable from the outside ... unless you set up port
forwarding" (VirtualBox manual 6.3): the 2014 user had Shipyard running in the guest
and still had to forward localhost:8000 to 10.0.2.15:8000 by hand.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.host import netinfo
from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.stacks import HostPort, Stack

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

# systemd-detect-virt's DMI table (src/basic/virt.c) names VirtualBox by the product
# "VirtualBox" or by the vendor "innotek GmbH"; VirtualBox 7 reports the vendor
# "Oracle Corporation", which alone would also match Oracle's own servers.
VBOX_PRODUCT = "VirtualBox"
VBOX_VENDOR = "innotek GmbH"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


# --- VBoxManage on a host ------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """One NAT port-forwarding rule: ``Forwarding(i)="name,proto,hostip,hostport,
    guestip,guestport"`` (empty addresses mean all host addresses / the guest)."""

    name: str
    protocol: str
    host_ip: str
    host_port: int
    guest_ip: str
    guest_port: int


@dataclass(frozen=True)
class Nic:
    """A network adapter of a VM: its attachment, cable state and NAT port forwards."""

    slot: int
    attachment: str  # nat, bridged, hostonly, intnet, natnetwork, none, ...
    cable_connected: bool | None
    forwards: tuple[Forward, ...]


@dataclass(frozen=True)
class VmInfo:
    """A running VirtualBox VM: its name, state and network adapters."""

    name: str
    state: str
    nics: tuple[Nic, ...]

    @property
    def nat_nics(self) -> tuple[Nic, ...]:
        return tuple(n for n in self.nics if n.attachment == "nat")


_PAIR = re.compile(r'^\s*"?([^"=]+)"?=(?:"(.*)"|(\S*))\s*$')
_FORWARD = re.compile(r"^Forwarding\(\d+\)$")
_NIC = re.compile(r"^(nic|cableconnected|natnet)(\d+)$")


def parse_showvminfo(text: str) -> VmInfo:
    """Parse ``VBoxManage showvminfo VM --machinereadable``.

    Forwarding(i) lines carry no NIC number: VBoxManageInfo.cpp prints them right
    after the NIC they belong to (and restarts i at 0 for the next NAT NIC), so each
    one is given to the NIC whose lines came last.
    """
    values: dict[str, str] = {}
    attachments: dict[int, str] = {}
    cables: dict[int, bool] = {}
    forwards: dict[int, list[Forward]] = {}
    current = 0
    for line in text.splitlines():
        pair = _PAIR.match(line)
        if not pair:
            continue  # a continuation of a multi-line value (description=...)
        key = pair.group(1)
        value = pair.group(2) if pair.group(2) is not None else pair.group(3)
        nic = _NIC.match(key)
        if nic:
            current = int(nic.group(2))
            if nic.group(1) == "nic":
                attachments[current] = value
            elif nic.group(1) == "cableconnected":
                cables[current] = value == "on"
        elif _FORWARD.match(key):
            fields = value.split(",")
            if len(fields) == 6 and fields[3].isdigit() and fields[5].isdigit():
                name, proto, host_ip, host_port, guest_ip, guest_port = fields
                forwards.setdefault(current, []).append(
                    Forward(
                        name, proto, host_ip, int(host_port), guest_ip, int(guest_port)
                    )
                )
        values.setdefault(key, value)
    nics = tuple(
        Nic(slot, attachments[slot], cables.get(slot), tuple(forwards.get(slot, ())))
        for slot in sorted(attachments)
    )
    return VmInfo(values.get("name", ""), values.get("VMState", ""), nics)


_LISTED = re.compile(r'^"(.*)" \{([0-9a-fA-F-]+)\}$')


def parse_vm_list(text: str) -> tuple[tuple[str, str], ...]:
    """(name, uuid) pairs from ``VBoxManage list vms`` / ``list runningvms``."""
    found = []
    for line in text.splitlines():
        match = _LISTED.match(line.strip())
        if match:
            found.append((match.group(1), match.group(2)))
    return tuple(found)


@dataclass(frozen=True)
class HostVms:
    """The running VMs VBoxManage lists for this user, and the calls that failed."""

    binary: str
    vms: tuple[VmInfo, ...]
    errors: tuple[str, ...]  # VBoxManage calls that failed, described


@host_fact
def running_vms(host: Host, binary: str) -> HostVms:
    """Every running VM of the calling user (VBoxManage sees only its own user's)."""

    listed = host.run_command([binary, "list", "runningvms"])
    if not listed.ok:
        return HostVms(binary, (), (listed.describe(),))
    vms, errors = [], []
    for _name, uuid in parse_vm_list(listed.stdout):
        shown = host.run_command([binary, "showvminfo", uuid, "--machinereadable"])
        if shown.ok:
            vms.append(parse_showvminfo(shown.stdout))
        else:
            errors.append(shown.describe())
    return HostVms(binary, tuple(vms), tuple(errors))


def missing_forwards(vm: VmInfo, wanted: tuple[HostPort, ...]) -> tuple[HostPort, ...]:
    """The wanted guest ports that no TCP rule of any NAT adapter forwards to.

    The host side of a rule may differ (guest 80 is usually reached on host 8080),
    so only the guest port has to match. A VM without a NAT adapter needs none.
    """
    if not vm.nat_nics:
        return ()
    forwarded = {
        f.guest_port for n in vm.nat_nics for f in n.forwards if f.protocol == "tcp"
    }
    return tuple(p for p in wanted if p.port not in forwarded)


def unplugged(vm: VmInfo) -> tuple[Nic, ...]:
    """NAT adapters whose virtual cable is disconnected: the guest's DHCP client gets
    no answer from VirtualBox's NAT engine, so the guest has no address at all."""
    return tuple(n for n in vm.nat_nics if n.cable_connected is False)


# --- the nat-vbox evidence -----------------------------------------------------------


def forward_port(port: int) -> int:
    """The host port a guest port is forwarded from: VirtualBox runs as the user,
    who may not bind ports below 1024 on the host."""
    return port + 8000 if port < 1024 else port


def natpf_rule(want: HostPort) -> str:
    """The forwarding rule as `VBoxManage controlvm VM natpfN` takes it:
    name,proto,host-ip,host-port,guest-ip,guest-port."""
    return f"shipyard-{want.port},tcp,127.0.0.1,{forward_port(want.port)},,{want.port}"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class VmFinding:
    """A running VM's NAT problems: adapters with the cable out, and Shipyard ports
    not forwarded."""

    vm: VmInfo
    unplugged: tuple[Nic, ...]  # NAT adapters with the cable disconnected
    missing: tuple[HostPort, ...]  # Shipyard ports not forwarded

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(natpf_rule(p) for p in self.missing)


@dataclass(frozen=True)
class HostEvidence:
    """On the VirtualBox host: each running VM's NAT adapters and forwards."""

    binary: str
    vms: tuple[VmFinding, ...]

    def to_data(self) -> dict[str, object]:
        return {
            "role": "host",
            "binary": self.binary,
            "vms": [
                {
                    "name": f.vm.name,
                    "nat_adapters": [n.slot for n in f.vm.nat_nics],
                    "unplugged": [n.slot for n in f.unplugged],
                    "missing": [p.port for p in f.missing],
                    "natpf": list(f.rules),
                }
                for f in self.vms
            ],
        }


def host_evidence(found: HostVms, wanted: tuple[HostPort, ...]) -> HostEvidence:
    return HostEvidence(
        found.binary,
        tuple(
            VmFinding(vm, unplugged(vm), missing_forwards(vm, wanted))
            for vm in found.vms
        ),
    )
