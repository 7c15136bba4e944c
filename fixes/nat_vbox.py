"""nat-vbox fix: forward Shipyard's ports through VirtualBox's NAT, on the host.

Port forwarding is a setting of VirtualBox's NAT engine, which runs on the host: on
a host with VBoxManage the fix adds each missing rule to the running VM
(``VBoxManage controlvm VM natpfN "shipyard-8000,tcp,127.0.0.1,8000,,8000"``; undo
deletes it by name) and plugs in a disconnected virtual cable. Inside a NAT guest
nothing can be changed: the plan lists the exact commands to run on the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shipyard_doctor.fixing import Fix, FixOptions, Plan, RunCommand
from shipyard_doctor.model import Result

if TYPE_CHECKING:
    from shipyard_doctor.host import vbox, vboxmanage
    from shipyard_doctor.host.gateway import Host

CHECK = "nat-vbox"


class NatVboxFix(Fix):
    id = "nat-vbox"
    title = "Forward Shipyard's ports through VirtualBox NAT"
    repairs = (CHECK,)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.host import vbox, vboxmanage

        found = result.evidence
        if isinstance(found, vbox.GuestEvidence):
            return _guest(self.id, found)
        if isinstance(found, vboxmanage.HostEvidence):
            return _host(self.id, found, host)
        return Plan(self.id, CHECK, "no VirtualBox NAT forwarding to set up here")


def _guest(fix_id: str, found: vbox.GuestEvidence) -> Plan:
    slot, rules = found.adapter, found.rules
    ports = ", ".join(str(p.port) for p in found.ports)
    return Plan(
        fix_id,
        CHECK,
        "nothing can be changed from inside the guest: the NAT engine that must "
        f"forward port{'s' if len(rules) > 1 else ''} {ports} to "
        f"{found.nat.address.ip} is part of VirtualBox on the host; run "
        'these there (for "VM" put the name `VBoxManage list runningvms` shows)',
        manual=tuple(f'VBoxManage controlvm "VM" natpf{slot} "{r}"' for r in rules),
        notes=(
            "with Vagrant, add to the Vagrantfile instead, then run vagrant reload: "
            + "; ".join(
                f'config.vm.network "forwarded_port", guest: {guest}, host: {host}'
                for _name, host, guest in map(_ports, rules)
            ),
        ),
    )


def _host(fix_id: str, found: vboxmanage.HostEvidence, host: Host) -> Plan:
    binary = found.binary
    steps: list[RunCommand] = []
    for vm in found.vms:
        name = vm.vm.name
        control = (binary, "controlvm", name)
        for slot in (n.slot for n in vm.unplugged):
            steps.append(
                RunCommand(
                    (*control, f"setlinkstate{slot}", "on"),
                    f'plug in the virtual cable of "{name}" adapter {slot}: without '
                    "it the guest gets no DHCP lease",
                    inverse=(*control, f"setlinkstate{slot}", "off"),
                    done_when=_shown(host, binary, name, _cable_on(slot)),
                )
            )
        for rule in vm.rules:
            slot = vm.vm.nat_nics[0].slot
            rule_name, host_port, guest_port = _ports(rule)
            steps.append(
                RunCommand(
                    (*control, f"natpf{slot}", rule),
                    f'forward 127.0.0.1:{host_port} on this host to "{name}" port '
                    f"{guest_port}",
                    inverse=(*control, f"natpf{slot}", "delete", rule_name),
                    done_when=_shown(host, binary, name, _has_rule(rule_name)),
                )
            )
    if not steps:
        return Plan(fix_id, CHECK, "every running NAT VM forwards Shipyard's ports")
    urls = sorted({_ports(r)[1] for vm in found.vms for r in vm.rules})
    cables = sum(len(vm.unplugged) for vm in found.vms)
    work = [f"add {len(steps) - cables} NAT port forwarding rule(s)"] if urls else []
    work += [f"plug in {cables} virtual cable(s)"] if cables else []
    return Plan(
        fix_id,
        CHECK,
        " and ".join(work) + " with VBoxManage, on the running VMs",
        steps=tuple(steps),
        risk="a host port another program already holds makes VirtualBox skip "
        "that rule without an error",
        notes=tuple(f"Shipyard will answer on http://127.0.0.1:{p}/" for p in urls),
    )


def _ports(rule: str) -> tuple[str, int, int]:
    """(name, host port, guest port) of a natpf rule name,proto,hip,hport,gip,gport."""
    fields = rule.split(",")
    return fields[0], int(fields[3]), int(fields[5])


def _shown(
    host: Host, binary: str, vm: str, test: Callable[[vboxmanage.VmInfo], bool]
) -> Callable[[], bool]:
    """A ``done_when`` that asks VBoxManage now (not the check's cached answer)."""
    from shipyard_doctor.host import vboxmanage

    def done() -> bool:
        shown = host.run_command([binary, "showvminfo", vm, "--machinereadable"])
        return shown.ok and test(vboxmanage.parse_showvminfo(shown.stdout))

    return done


def _has_rule(name: str) -> Callable[[vboxmanage.VmInfo], bool]:
    return lambda vm: any(f.name == name for n in vm.nat_nics for f in n.forwards)


def _cable_on(slot: int) -> Callable[[vboxmanage.VmInfo], bool]:
    return lambda vm: any(n.slot == slot and n.cable_connected for n in vm.nics)
