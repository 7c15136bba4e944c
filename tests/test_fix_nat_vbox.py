"""nat-vbox fix. The guest side for real: tests/test_nat_vbox.py's namespace wired
like a VirtualBox NAT guest and DMI files in the kernel's format, where the fix
applies nothing and lists the commands to run on the host. The host side on the
recorded real `VBoxManage showvminfo --machinereadable` of tests/data/vbox: the
plan's exact commands and their inverses. Applying them is NOT tested: VirtualBox
cannot be installed on this machine, and a fake VBoxManage would prove nothing.
"""

from __future__ import annotations

from pathlib import Path

import test_nat_vbox
from doctor_cli import run_doctor
from shipyard_doctor.checks.nat_vbox import _host_side
from shipyard_doctor.config import Config
from shipyard_doctor.fixes.nat_vbox import NatVboxFix
from shipyard_doctor.fixing import FixOptions
from shipyard_doctor.host.facts import fact_key
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.vbox import browser_ports
from shipyard_doctor.host.vboxmanage import HostVms, parse_showvminfo, running_vms
from shipyard_doctor.model import Result

nat_guest = test_nat_vbox.nat_guest  # the fixture, shared
RECORDED = (test_nat_vbox.DATA / "showvminfo-vagrant-nat.txt").read_text()
VM = "urfve6cb85a2_default_1458910687825_39001"  # the recorded VM's name
BINARY = "/usr/bin/VBoxManage"  # where VirtualBox's Linux packages install it


def test_inside_the_guest_nothing_is_applied(nat_guest, tmp_path: Path):
    dmi = test_nat_vbox.write_dmi(tmp_path / "dmi", "VirtualBox", "innotek GmbH")
    journal = tmp_path / "journal"
    config = tmp_path / "config.toml"
    config.write_text(f"[host]\ndmi_dir = '{dmi}'\n[fix]\njournal_dir = '{journal}'\n")
    run = run_doctor(
        "check", "--fix", "--yes", "--json", "--only", "nat-vbox", netns=nat_guest,
        config=config,
    )  # fmt: skip
    assert run.stderr == "" and run.code == 0, run.stderr
    (report,) = run.doc["fixes"]
    assert (report["fix"], report["outcome"]) == ("nat-vbox", "nothing-to-do")
    assert report["message"] == (
        "nothing can be changed from inside the guest: the NAT engine that must "
        "forward ports 80, 8000 to 10.0.2.15 is part of VirtualBox on the host; run "
        'these there (for "VM" put the name `VBoxManage list runningvms` shows)'
    )
    plan = report["plan"]
    assert plan["steps"] == []
    assert plan["manual"] == [
        'VBoxManage controlvm "VM" natpf1 "shipyard-80,tcp,127.0.0.1,8080,,80"',
        'VBoxManage controlvm "VM" natpf1 "shipyard-8000,tcp,127.0.0.1,8000,,8000"',
    ]
    assert plan["notes"] == [
        "with Vagrant, add to the Vagrantfile instead, then run vagrant reload: "
        'config.vm.network "forwarded_port", guest: 80, host: 8080; '
        'config.vm.network "forwarded_port", guest: 8000, host: 8000'
    ]
    assert not journal.exists()  # nothing applied, no fix run recorded
    assert run.check("nat-vbox")["status"] == "warning"


def host_side(showvminfo: str) -> tuple[Result, Host]:
    """The check's host-side result for one running VM, the recorded one.

    The check would get it from `VBoxManage list runningvms` and `showvminfo`; here
    the host's fact cache is given the recorded output, parsed by the same code."""
    host = Host(Config())
    vm = parse_showvminfo(showvminfo)
    host.memo(fact_key(running_vms, BINARY), lambda: HostVms(BINARY, (vm,), ()))
    wanted = browser_ports(host.stack(), host.config.stack.ports)
    return _host_side(host, BINARY, wanted), host


def test_host_side_adds_the_missing_forwards_by_name():
    result, host = host_side(RECORDED)
    assert result.status.value == "warning", result
    plan = NatVboxFix().plan(result, host, FixOptions())
    control = (BINARY, "controlvm", VM, "natpf1")
    assert [(s.argv, s.inverse) for s in plan.steps] == [
        (
            (*control, "shipyard-80,tcp,127.0.0.1,8080,,80"),
            (*control, "delete", "shipyard-80"),
        ),
        (
            (*control, "shipyard-8000,tcp,127.0.0.1,8000,,8000"),
            (*control, "delete", "shipyard-8000"),
        ),
    ]
    assert plan.summary == (
        "add 2 NAT port forwarding rule(s) with VBoxManage, on the running VMs"
    )
    assert plan.notes == (
        "Shipyard will answer on http://127.0.0.1:8000/",
        "Shipyard will answer on http://127.0.0.1:8080/",
    )
    # done_when asks VBoxManage itself; without it nothing counts as done.
    assert plan.pending == plan.steps


def test_host_side_plugs_in_the_cable_first():
    # The recorded VM with its virtual cable pulled (cableconnected1="off").
    text = RECORDED.replace('cableconnected1="on"', 'cableconnected1="off"')
    result, host = host_side(text)
    assert result.status.value == "failure", result
    plan = NatVboxFix().plan(result, host, FixOptions())
    cable = plan.steps[0]
    assert cable.argv == (BINARY, "controlvm", VM, "setlinkstate1", "on")
    assert cable.inverse == (BINARY, "controlvm", VM, "setlinkstate1", "off")
    assert len(plan.steps) == 3
    assert plan.summary == (
        "add 2 NAT port forwarding rule(s) and plug in 1 virtual cable(s) with "
        "VBoxManage, on the running VMs"
    )
