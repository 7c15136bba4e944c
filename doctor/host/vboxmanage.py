"""VirtualBox NAT from the host's side: the running VMs, as ``VBoxManage`` lists them,
and which of them forward the ports Shipyard needs (the guest's side is :mod:`.vbox`).
Only imported where ``VBoxManage`` exists: a plain check on a guest or a server never
builds these records.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.host.vbox import natpf_rule
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.stacks import HostPort


@record
class Forward:
    """One NAT port-forwarding rule: ``Forwarding(i)="name,proto,hostip,hostport,
    guestip,guestport"`` (empty addresses mean all host addresses / the guest)."""

    name: str
    protocol: str
    host_ip: str
    host_port: int
    guest_ip: str
    guest_port: int


@record
class Nic:
    """A network adapter of a VM: its attachment, cable state and NAT port forwards."""

    slot: int
    attachment: str  # nat, bridged, hostonly, intnet, natnetwork, none, ...
    cable_connected: bool | None
    forwards: tuple[Forward, ...]


@record
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


@record
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


@record
class VmFinding:
    """A running VM's NAT problems: adapters with the cable out, and Shipyard ports
    not forwarded."""

    vm: VmInfo
    unplugged: tuple[Nic, ...]  # NAT adapters with the cable disconnected
    missing: tuple[HostPort, ...]  # Shipyard ports not forwarded

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(natpf_rule(p) for p in self.missing)


@record
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
