"""nat-vbox: can Shipyard in a VirtualBox NAT guest be reached from the host?

The 2014 user ran Shipyard in a Vagrant/VirtualBox VM whose only network was NAT:
the guest (10.0.2.15 behind the gateway 10.0.2.2) is unreachable from outside until
each port is forwarded, and that can only be done on the host. Inside such a guest
the check lists the ports to forward with the exact Vagrantfile lines and VBoxManage
commands. On a host with VBoxManage it reads every running VM's NAT rules and says
which Shipyard ports are not forwarded, and which NAT adapters have their virtual
cable unplugged (the guest then gets no DHCP lease).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.stacks import HostPort


class NatVboxCheck(Check):
    id = "nat-vbox"
    title = "VirtualBox NAT forwards Shipyard's ports"
    category = "network"

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host import vbox

        wanted = vbox.browser_ports(host.stack(), host.config.stack.ports)
        binary = host.find_binary("VBoxManage")
        if binary is not None:
            return _host_side(host, binary, wanted)
        dmi_dir = host.config.host.dmi_dir
        dmi = vbox.read_dmi(dmi_dir)
        nat = vbox.nat_address(host)
        details = [dmi.describe() if dmi else f"no DMI information at {dmi_dir}"]
        if nat:
            details.append(
                f"{nat.interface}: {nat.address}, default route via {nat.gateway} "
                "(VirtualBox NAT addressing)"
            )
        if dmi is None or not dmi.is_virtualbox:
            return Result.ok("not a VirtualBox NAT guest", details=details)
        if nat is None:
            return Result.ok(
                "VirtualBox guest without NAT addressing (bridged or host-only "
                "network): no port forwarding needed",
                details=details,
            )
        guest = vbox.GuestEvidence(nat, wanted)
        ports = ", ".join(str(p.port) for p in wanted)
        return Result.warning(
            f"VirtualBox NAT guest ({nat.address.ip} on {nat.interface}): Shipyard's "
            f"port{'s' if len(wanted) > 1 else ''} {ports} can be reached from the "
            "host only through port forwarding",
            details=[*details, *(_line(p) for p in wanted)],
            hints=[
                "nothing can be changed from inside the guest: run these on the host",
                *_forward_hints('"VM"', guest.adapter, wanted),
            ],
            evidence=guest,
        )


def _line(want: HostPort) -> str:
    from shipyard_doctor.host import vbox

    return (
        f"{want.port}/tcp ({want.service}): forward host port "
        f"{vbox.forward_port(want.port)} to guest port {want.port}"
    )


def _forward_hints(vm: str, slot: int, ports: tuple[HostPort, ...]) -> list[str]:
    from shipyard_doctor.host import vbox

    lines = " ".join(
        f'config.vm.network "forwarded_port", guest: {p.port}, '
        f"host: {vbox.forward_port(p.port)};"
        for p in ports
    )
    commands = "; ".join(
        f'VBoxManage controlvm {vm} natpf{slot} "{vbox.natpf_rule(p)}"' for p in ports
    )
    return [
        f"Vagrant: add to the Vagrantfile {lines.rstrip(';')} then run vagrant reload",
        f"plain VirtualBox, while the VM runs: {commands}",
    ]


def _host_side(host: Host, binary: str, wanted: tuple[HostPort, ...]) -> Result:
    from shipyard_doctor.host import vboxmanage

    found = vboxmanage.running_vms(host, binary)
    details = [f"{binary} list runningvms: {len(found.vms)} running"]
    details += [f"failed: {e}" for e in found.errors]
    if not found.vms:
        if found.errors:
            return Result.error("VBoxManage could not list the VMs", details=details)
        return Result.skipped(
            "no VirtualBox VM is running (for this user): nothing to check",
            details=details,
        )
    evidence = vboxmanage.host_evidence(found, wanted)
    cut: list[str] = []
    unforwarded: list[str] = []
    hints: list[str] = []
    for item in evidence.vms:
        vm = item.vm
        for nic in vm.nat_nics:
            rules = ", ".join(
                f"{f.name} {f.host_ip or '*'}:{f.host_port}->{f.guest_port}"
                for f in nic.forwards
            )
            cable = {True: "on", False: "OFF", None: "?"}[nic.cable_connected]
            details.append(
                f'"{vm.name}" adapter {nic.slot} (nat, cable {cable}): '
                f"{rules or 'no port forwarding rules'}"
            )
        for nic in item.unplugged:
            cut.append(f'"{vm.name}" adapter {nic.slot}')
            hints.append(
                f'plug the cable in: VBoxManage controlvm "{vm.name}" '
                f"setlinkstate{nic.slot} on"
            )
        if item.missing:
            ports = ", ".join(str(p.port) for p in item.missing)
            unforwarded.append(f'"{vm.name}" ({ports})')
            hints += _forward_hints(f'"{vm.name}"', vm.nat_nics[0].slot, item.missing)
    if cut:
        return Result.failure(
            f"NAT adapter with its cable disconnected: {', '.join(cut)}: the "
            "guest gets no DHCP lease and no network",
            details=details,
            hints=hints,
            evidence=evidence,
        )
    if unforwarded:
        return Result.warning(
            "Shipyard's ports are not forwarded to NAT guest " + "; ".join(unforwarded),
            details=details,
            hints=hints,
            evidence=evidence,
        )
    if not any(vm.nat_nics for vm in found.vms):
        return Result.ok(
            "no running VM uses NAT: no port forwarding needed",
            details=details,
            evidence=evidence,
        )
    return Result.ok(
        "every running NAT VM forwards Shipyard's ports",
        details=details,
        evidence=evidence,
    )
