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

from shipyard_doctor.host import vbox
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import Check, Result
from shipyard_doctor.stacks import HostPort


class NatVboxCheck(Check):
    id = "nat-vbox"
    title = "VirtualBox NAT forwards Shipyard's ports"
    category = "network"

    def run(self, host: Host) -> Result:
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
        slot = nat.address.network.network_address.packed[2] - 1
        ports = ", ".join(str(p.port) for p in wanted)
        return Result.warning(
            f"VirtualBox NAT guest ({nat.address.ip} on {nat.interface}): Shipyard's "
            f"port{'s' if len(wanted) > 1 else ''} {ports} can be reached from the "
            "host only through port forwarding",
            details=[*details, *(_line(p) for p in wanted)],
            hints=[
                "nothing can be changed from inside the guest: run these on the host",
                *_forward_hints('"VM"', slot, wanted),
            ],
            data={
                "role": "guest",
                "interface": nat.interface,
                "address": str(nat.address),
                "adapter": slot,
                "ports": [p.port for p in wanted],
                "natpf": [natpf_rule(p) for p in wanted],
            },
        )


def _host_port(port: int) -> int:
    # VirtualBox runs as the user, who may not bind ports below 1024 on the host.
    return port + 8000 if port < 1024 else port


def natpf_rule(want: HostPort) -> str:
    """The forwarding rule as `VBoxManage controlvm VM natpfN` takes it (the fix
    reads it from ``data``): name,proto,host-ip,host-port,guest-ip,guest-port."""
    return f"shipyard-{want.port},tcp,127.0.0.1,{_host_port(want.port)},,{want.port}"


def _line(want: HostPort) -> str:
    return (
        f"{want.port}/tcp ({want.service}): forward host port "
        f"{_host_port(want.port)} to guest port {want.port}"
    )


def _forward_hints(vm: str, slot: int, ports: tuple[HostPort, ...]) -> list[str]:
    lines = " ".join(
        f'config.vm.network "forwarded_port", guest: {p.port}, '
        f"host: {_host_port(p.port)};"
        for p in ports
    )
    commands = "; ".join(
        f'VBoxManage controlvm {vm} natpf{slot} "{natpf_rule(p)}"' for p in ports
    )
    return [
        f"Vagrant: add to the Vagrantfile {lines.rstrip(';')} then run vagrant reload",
        f"plain VirtualBox, while the VM runs: {commands}",
    ]


def _host_side(host: Host, binary: str, wanted: tuple[HostPort, ...]) -> Result:
    found = vbox.running_vms(host, binary)
    details = [f"{binary} list runningvms: {len(found.vms)} running"]
    details += [f"failed: {e}" for e in found.errors]
    if not found.vms:
        if found.errors:
            return Result.error("VBoxManage could not list the VMs", details=details)
        return Result.skipped(
            "no VirtualBox VM is running (for this user): nothing to check",
            details=details,
        )
    cut: list[str] = []
    unforwarded: list[str] = []
    hints: list[str] = []
    vm_data = []
    for vm in found.vms:
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
        for nic in vbox.unplugged(vm):
            cut.append(f'"{vm.name}" adapter {nic.slot}')
            hints.append(
                f'plug the cable in: VBoxManage controlvm "{vm.name}" '
                f"setlinkstate{nic.slot} on"
            )
        missing = vbox.missing_forwards(vm, wanted)
        if missing:
            unforwarded.append(
                f'"{vm.name}" ({", ".join(str(p.port) for p in missing)})'
            )
            hints += _forward_hints(f'"{vm.name}"', vm.nat_nics[0].slot, missing)
        vm_data.append(
            {
                "name": vm.name,
                "nat_adapters": [n.slot for n in vm.nat_nics],
                "unplugged": [n.slot for n in vbox.unplugged(vm)],
                "missing": [p.port for p in missing],
                "natpf": [natpf_rule(p) for p in missing],
            }
        )
    data = {"role": "host", "binary": binary, "vms": vm_data}
    if cut:
        return Result.failure(
            f"NAT adapter with its cable disconnected: {', '.join(cut)}: the "
            "guest gets no DHCP lease and no network",
            details=details,
            hints=hints,
            data=data,
        )
    if unforwarded:
        return Result.warning(
            "Shipyard's ports are not forwarded to NAT guest " + "; ".join(unforwarded),
            details=details,
            hints=hints,
            data=data,
        )
    if not any(vm.nat_nics for vm in found.vms):
        return Result.ok(
            "no running VM uses NAT: no port forwarding needed",
            details=details,
            data=data,
        )
    return Result.ok(
        "every running NAT VM forwards Shipyard's ports", details=details, data=data
    )
