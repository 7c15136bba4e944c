"""nat-vbox: the VBoxManage parsers on real recorded output (tests/data/vbox/README.md
names the source), and the guest side for real: a namespace addressed like a
VirtualBox NAT guest (10.0.2.15/24, default route via 10.0.2.2 held by a peer
namespace), DMI files in the kernel's format in a temp dir, and this machine's own
DMI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from doctor_cli import run_doctor
from infra import Netns
from shipyard_doctor.host.vbox import browser_ports, read_dmi
from shipyard_doctor.host.vboxmanage import (
    Forward,
    missing_forwards,
    parse_showvminfo,
    parse_vm_list,
    unplugged,
)
from shipyard_doctor.stacks import load_stack

DATA = Path(__file__).parent / "data" / "vbox"
V1_WEB = browser_ports(load_stack("v1"), {})


def test_parse_recorded_showvminfo():
    vm = parse_showvminfo((DATA / "showvminfo-vagrant-nat.txt").read_text())
    assert (vm.name, vm.state) == (
        "urfve6cb85a2_default_1458910687825_39001",
        "running",
    )
    assert [(n.slot, n.attachment, n.cable_connected) for n in vm.nics] == [
        (1, "nat", True),
        *((slot, "none", None) for slot in range(2, 9)),
    ]
    (nat,) = vm.nat_nics
    assert nat.forwards == (
        Forward("ssh", "tcp", "127.0.0.1", 2200, "", 22),
        Forward("tcp56790", "tcp", "", 2201, "", 56789),
        Forward("tcp56791", "tcp", "", 2202, "", 56787),
    )
    assert [p.port for p in missing_forwards(vm, V1_WEB)] == [80, 8000]
    assert unplugged(vm) == ()


def test_unplugged_cable_on_the_recorded_vm():
    # The same real record as VirtualBox prints it with the virtual cable pulled
    # (VBoxManageInfo.cpp writes cableconnected<N>="off"); nothing else changed.
    text = (DATA / "showvminfo-vagrant-nat.txt").read_text()
    vm = parse_showvminfo(text.replace('cableconnected1="on"', 'cableconnected1="off"'))
    assert [n.slot for n in unplugged(vm)] == [1]


def test_parse_recorded_vm_list():
    vms = parse_vm_list((DATA / "list-vms.txt").read_text())
    assert len(vms) == 10
    assert vms[0] == ("boot2docker-vm", "d4d92435-7863-43ab-9a4a-1b24654abcd8")


def test_browser_ports_of_each_stack():
    assert [p.port for p in V1_WEB] == [80, 8000]  # not redis' 6379
    assert [p.port for p in browser_ports(load_stack("v3"), {})] == [8080]
    moved = browser_ports(load_stack("v1"), {"shipyard": 8001})
    assert [p.port for p in moved] == [80, 8001]


def write_dmi(folder: Path, product: str, vendor: str) -> Path:
    folder.mkdir()
    (folder / "product_name").write_text(f"{product}\n")
    (folder / "sys_vendor").write_text(f"{vendor}\n")
    return folder


def test_read_dmi_files(tmp_path):
    dmi = read_dmi(str(write_dmi(tmp_path / "id", "VirtualBox", "innotek GmbH")))
    assert dmi is not None and dmi.is_virtualbox
    oracle = read_dmi(
        str(write_dmi(tmp_path / "o", "SUN FIRE X4170", "Oracle Corporation"))
    )
    assert oracle is not None and not oracle.is_virtualbox
    assert read_dmi(str(tmp_path / "missing")) is None


@pytest.fixture
def nat_guest(netns, require_infra) -> Iterator[Netns]:
    """``netns`` wired like a VirtualBox NAT guest: enp0s3 10.0.2.15/24 with the
    default route via 10.0.2.2, which a second namespace holds."""
    require_infra("ip")
    gateway = Netns.create()
    try:
        for argv in (
            [
                "ip",
                "link",
                "add",
                "enp0s3",
                "type",
                "veth",
                "peer",
                "name",
                "vboxnat",
                "netns",
                gateway.name,
            ],
            ["ip", "addr", "add", "10.0.2.15/24", "dev", "enp0s3"],
            ["ip", "link", "set", "enp0s3", "up"],
        ):
            netns.run(argv, check=True)
        gateway.run(["ip", "addr", "add", "10.0.2.2/24", "dev", "vboxnat"], check=True)
        gateway.run(["ip", "link", "set", "vboxnat", "up"], check=True)
        netns.run(["ip", "route", "add", "default", "via", "10.0.2.2"], check=True)
        yield netns
    finally:
        gateway.delete()


def nat_vbox(netns: Netns, tmp_path: Path, dmi_dir: Path | str) -> dict:
    config = tmp_path / "config.toml"
    config.write_text(f"[host]\ndmi_dir = '{dmi_dir}'\n")
    run = run_doctor(
        "check", "--json", "--only", "nat-vbox", netns=netns, config=config
    )
    assert run.stderr == "", run.stderr
    return run.check("nat-vbox")


def test_virtualbox_nat_guest_lists_the_forwards(nat_guest, tmp_path):
    dmi = write_dmi(tmp_path / "dmi", "VirtualBox", "innotek GmbH")
    check = nat_vbox(nat_guest, tmp_path, dmi)
    assert check["status"] == "warning"
    assert check["summary"] == (
        "VirtualBox NAT guest (10.0.2.15 on enp0s3): Shipyard's ports 80, 8000 can "
        "be reached from the host only through port forwarding"
    )
    assert (
        "enp0s3: 10.0.2.15/24, default route via 10.0.2.2 (VirtualBox NAT "
        "addressing)" in check["details"]
    )
    hints = check["hints"]
    assert hints[0].startswith("nothing can be changed from inside the guest")
    assert 'config.vm.network "forwarded_port", guest: 8000, host: 8000' in hints[1]
    assert 'config.vm.network "forwarded_port", guest: 80, host: 8080' in hints[1]
    assert (
        'VBoxManage controlvm "VM" natpf1 "shipyard-8000,tcp,127.0.0.1,8000,,8000"'
        in hints[2]
    )
    assert check["data"]["ports"] == [80, 8000]


def test_virtualbox_guest_without_nat(netns, tmp_path):
    dmi = write_dmi(tmp_path / "dmi", "VirtualBox", "Oracle Corporation")
    check = nat_vbox(netns, tmp_path, dmi)
    assert check["status"] == "ok"
    assert check["summary"].startswith("VirtualBox guest without NAT addressing")


def test_this_machine_is_not_a_virtualbox_guest(nat_guest, tmp_path):
    # The real DMI of this machine (a Firecracker VM has none at all). QEMU's
    # user-mode network also hands out 10.0.2.15 via 10.0.2.2: the addressing
    # alone does not make a VirtualBox guest.
    check = nat_vbox(nat_guest, tmp_path, "/sys/class/dmi/id")
    assert check["status"] == "ok"
    assert check["summary"] == "not a VirtualBox NAT guest"
    real = read_dmi("/sys/class/dmi/id")
    assert check["details"][0] == (
        real.describe() if real else "no DMI information at /sys/class/dmi/id"
    )
