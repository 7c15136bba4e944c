"""dhcp: the lease and message parsers on recorded real files, and the check on a real
link: a veth pair between two namespaces we create (the "VM" end without an address,
the "network" end with 203.0.113.1/24), a real dnsmasq serving DHCP on the network end
and a real ISC dhclient on the VM end. Nothing touches the root namespace: dhclient
gets its own lease, pid, config and script files (the default dhclient-script would
rewrite the machine's /etc/resolv.conf), and the doctor runs inside the VM namespace.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from doctor_cli import DoctorRun, run_doctor
from infra import ManagedProcess, Netns, stop_process
from shipyard_doctor.host.dhcp import (
    parse_client_argv,
    parse_dhclient_leases,
    parse_lease_file,
)
from shipyard_doctor.host.dhcpwire import build_discover, parse_dhcp_message
from shipyard_doctor.host.netinfo import Interface

DATA = Path(__file__).parent / "data" / "dhcp"
IFACE = "dc0"  # the name the recorded lease files carry
SERVER = "203.0.113.1"
MTIME = datetime(2026, 1, 1, tzinfo=UTC)


def _iface(name: str, index: int) -> Interface:
    return Interface(name, index, "ether", True, True, None, "", (), ())


# --- parsers, on recorded real data --------------------------------------------------


def test_recorded_dhclient_leases():
    # tests/data/dhcp/README.md: dhclient 4.4.3-P1 against dnsmasq 2.90, here.
    leases = parse_dhclient_leases((DATA / "dhclient.leases").read_text(), "x")
    assert len(leases) == 4
    last = leases[-1]
    assert (last.interface, str(last.address), str(last.server), str(last.router)) == (
        IFACE,
        "203.0.113.83",
        SERVER,
        SERVER,
    )
    assert leases[0].renew == datetime(2026, 11, 25, 15, 2, 12, tzinfo=UTC)
    assert leases[0].rebind == datetime(2026, 11, 25, 15, 3, 3, tzinfo=UTC)
    assert leases[0].expire == datetime(2026, 11, 25, 15, 3, 18, tzinfo=UTC)
    assert [le.expire for le in leases] == sorted(le.expire for le in leases)
    assert last.expired(datetime(2026, 11, 26, tzinfo=UTC))


def test_dhclient_epoch_times_and_lease6_blocks():
    # dhclient.conf "db-time-format local" writes epochs; lease6 blocks are IPv6.
    text = (
        (DATA / "dhclient.leases")
        .read_text()
        .replace(
            "expire 3 2026/11/25 15:03:18;", "expire epoch 1795619000; # Wed Nov 25"
        )
    )
    text = 'default-duid "\\000\\001";\nlease6 {\n  interface "dc0";\n}\n' + text
    leases = parse_dhclient_leases(text, "x")
    assert len(leases) == 4
    assert leases[0].expire == datetime.fromtimestamp(1795619000, UTC)


def test_recorded_networkd_lease():
    # From canonical/cloud-init tests (see tests/data/dhcp/README.md). networkd
    # names the file by ifindex and records durations: expiry is mtime + LIFETIME.
    data = (DATA / "networkd-lease-lxd").read_bytes()
    (lease,) = parse_lease_file("/run/leases/2", data, MTIME, [_iface("eth0", 2)])
    assert (lease.client, lease.interface) == ("systemd-networkd", "eth0")
    assert (str(lease.address), str(lease.server), str(lease.router)) == (
        "10.75.205.242",
        "10.75.205.1",
        "10.75.205.1",
    )
    assert lease.renew == MTIME + timedelta(seconds=1580)
    assert lease.expire == MTIME + timedelta(seconds=3600)
    # NetworkManager's internal client writes the same format, named by interface.
    name = "/nm/internal-3f9f8b9e-5a47-4f5c-9a5e-2a1c2d3e4f50-enp0s3.lease"
    (nm,) = parse_lease_file(name, data, MTIME, [_iface("enp0s3", 7)])
    assert (nm.client, nm.interface) == ("NetworkManager", "enp0s3")


def test_recorded_offer_and_dhcpcd_lease():
    data = (DATA / "dnsmasq-offer.bin").read_bytes()
    message = parse_dhcp_message(data)
    assert message is not None
    assert (message.op, message.message_type, message.xid) == (2, 2, 2312500871)
    assert (str(message.yiaddr), str(message.server)) == ("203.0.113.83", SERVER)
    assert message.u32(51) == 120 and str(message.ipv4_option(3)) == SERVER
    # dhcpcd keeps the server's message as its lease file, issued at the mtime.
    known = [_iface("br-1", 3), _iface("br-1x", 4)]
    (lease,) = parse_lease_file("/var/lib/dhcpcd/br-1x-home.lease", data, MTIME, known)
    assert (lease.client, lease.interface, str(lease.address)) == (
        "dhcpcd",
        "br-1x",
        "203.0.113.83",
    )
    assert lease.expire == MTIME + timedelta(seconds=120)


def test_discover_is_a_well_formed_request():
    mac = bytes.fromhex("46b4eaca01b8")
    packet = build_discover(0xDEADBEEF, mac)
    message = parse_dhcp_message(packet)
    assert message is not None and len(packet) == 300
    assert (message.op, message.message_type, message.xid) == (1, 1, 0xDEADBEEF)
    assert message.chaddr == mac and packet[10:12] == b"\x80\x00"  # broadcast flag
    assert 51 in message.options[55] and 54 in message.options[55]
    assert 50 not in message.options  # requests no address: only asks who answers


def test_client_command_lines():
    # This test's dhclient, and Debian ifupdown's (inet.defn, generated inet.c).
    ours = ["dhclient", "-1", "-v", "-lf", "/tmp/l", "-pf", "/tmp/p", "-sf", "/tmp/s"]
    ours.append("dc0")
    assert parse_client_argv("dhclient", ours) == (("dc0",), "/tmp/l")
    ifup = ["/sbin/dhclient", "-4", "-v", "-pf", "/run/dhclient.eth0.pid"]
    ifup += ["-lf", "/var/lib/dhcp/dhclient.eth0.leases", "-I"]
    ifup += [
        "-df",
        "/var/lib/dhcp/dhclient6.eth0.leases",
        "eth0",
        "-e",
        "IF_METRIC=100",
    ]
    assert parse_client_argv("dhclient", ifup) == (
        ("eth0",),
        "/var/lib/dhcp/dhclient.eth0.leases",
    )
    assert parse_client_argv("dhclient", ["dhclient"]) == ((), None)  # all
    assert parse_client_argv("udhcpc", ["udhcpc", "-i", "eth1"])[0] == ("eth1",)
    assert parse_client_argv("udhcpc", ["udhcpc"])[0] == ("eth0",)
    known = ["eth0", "eth1"]
    dhcpcd = ["dhcpcd", "-h", "vm", "-q", "eth1"]
    assert parse_client_argv("dhcpcd", dhcpcd, known)[0] == ("eth1",)
    assert parse_client_argv("dhcpcd", ["dhcpcd", "-h", "vm"], known)[0] == ()


# --- the real link -------------------------------------------------------------------


@dataclass
class Link:
    vm: Netns  # the "VM": dc0, up, no address; the doctor runs here
    net: Netns  # the "network": the peer end with 203.0.113.1/24
    tmp: Path
    mac: str
    config: Path  # the doctor's config: lease_dirs = [tmp/leases]
    lease_dir: Path

    def doctor(self, *args: str) -> DoctorRun:
        return run_doctor(
            "check",
            "--json",
            "--only",
            "dhcp",
            *args,
            netns=self.vm,
            config=self.config,
        )

    def ipv4(self) -> list[str]:
        done = self.vm.run(["ip", "-json", "-4", "addr", "show", "dev", IFACE])
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(done.stdout)
            for a in link.get("addr_info", ())
        ]


@pytest.fixture
def link(netns: Netns, require_infra, tmp_path: Path) -> Iterator[Link]:
    require_infra("ip", "nsenter")
    net = Netns.create()
    try:
        veth = ["ip", "link", "add", IFACE, "type", "veth"]
        for ns, argv in (
            (netns, [*veth, "peer", "name", "ds0", "netns", net.name]),
            (netns, ["ip", "link", "set", IFACE, "up"]),
            (net, ["ip", "addr", "add", f"{SERVER}/24", "dev", "ds0"]),
            (net, ["ip", "link", "set", "ds0", "up"]),
        ):
            ns.run(argv, check=True)
        shown = json.loads(netns.run(["ip", "-json", "link", "show", IFACE]).stdout)
        lease_dir = tmp_path / "leases"
        lease_dir.mkdir()
        config = tmp_path / "config.toml"
        config.write_text(f'[host]\nlease_dirs = ["{lease_dir}"]\n')
        _wait(lambda: _carrier(netns), "the veth to get a carrier")
        yield Link(netns, net, tmp_path, shown[0]["address"], config, lease_dir)
    finally:
        net.delete()


def _carrier(ns: Netns) -> bool:
    shown = json.loads(ns.run(["ip", "-json", "link", "show", IFACE]).stdout)
    return "LOWER_UP" in shown[0]["flags"]


def _wait(ready, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def dnsmasq(link: Link, require_infra) -> Iterator[ManagedProcess]:
    """A DHCP server on the network end (dnsmasq, DNS off), stopped by pid after."""
    require_infra("dnsmasq")
    proc = link.net.spawn(
        [
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=ds0",
            "--bind-interfaces",
            "--dhcp-range=203.0.113.50,203.0.113.99,255.255.255.0,2m",
            f"--dhcp-leasefile={link.tmp / 'dnsmasq.leases'}",
            f"--pid-file={link.tmp / 'dnsmasq.pid'}",
        ],
        log_path=link.tmp / "dnsmasq.log",
    )
    try:
        _wait(
            lambda: (
                "bound exclusively" in _read(link.tmp / "dnsmasq.log")
                or proc.poll() is not None
            ),
            "dnsmasq to start",
        )
        assert proc.poll() is None, _read(link.tmp / "dnsmasq.log")
        yield proc
    finally:
        stop_process(proc)


SCRIPT = """#!/bin/sh
# Applies the lease inside the test namespace only; never touches /etc.
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
esac
exit 0
"""


@pytest.fixture
def dhclient(link: Link, require_infra) -> Iterator:
    """``dhclient(*flags)`` starts ISC dhclient in the foreground (-d) on dc0 with
    private lease/pid/config/script files; every one is stopped by pid after."""
    require_infra("dhclient")
    script = link.tmp / "dhclient-script"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    (link.tmp / "dhclient.conf").write_text("")
    started: list[ManagedProcess] = []

    def start(*flags: str) -> ManagedProcess:
        argv = ["dhclient", "-d", "-v", *flags]
        argv += ["-cf", str(link.tmp / "dhclient.conf")]
        argv += ["-lf", str(link.tmp / "dhclient.leases")]
        argv += ["-pf", str(link.tmp / "dhclient.pid"), "-sf", str(script), IFACE]
        started.append(link.vm.spawn(argv, log_path=link.tmp / "dhclient.log"))
        return started[-1]

    try:
        yield start
    finally:
        for proc in started:
            stop_process(proc)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# --- the check on the real link ------------------------------------------------------


def test_no_client_and_no_address_is_a_failure(link):
    run = link.doctor()
    check = run.check("dhcp")
    assert run.code == 1 and check["status"] == "failure", check
    assert (
        check["summary"]
        == f"{IFACE} has no IPv4 address and no DHCP client is running for it"
    )
    assert (
        f"no DHCP client is running for {IFACE}: start one, e.g. `dhclient {IFACE}`"
        in check["hints"][0]
    )
    (row,) = [i for i in check["data"]["interfaces"] if i["name"] == IFACE]
    assert row["state"] == "no-address" and row["clients"] == []


def test_client_without_server_is_a_failure(link, dhclient):
    proc = dhclient()  # no -1: it keeps trying, as a booting VM's client would
    _wait(lambda: "DHCPDISCOVER" in _read(link.tmp / "dhclient.log"), "a DISCOVER")
    check = link.doctor().check("dhcp")
    assert check["status"] == "failure", check
    assert check["summary"] == (
        f"{IFACE} has no IPv4 address: dhclient (pid {proc.pid}) runs, but no DHCP "
        "lease arrived"
    )
    assert any(f"--probe-dhcp {IFACE}" in h for h in check["hints"])
    assert any(f"dhclient (pid {proc.pid}" in d for d in check["details"])
    (client,) = check["data"]["clients"]
    assert client["interfaces"] == [IFACE]
    assert client["lease_file"] == str(link.tmp / "dhclient.leases")


def test_expired_lease_is_named(link, dhclient):
    # The recorded lease (expired on 2026-11-25) sits in a lease dir, as after a
    # reboot; a client runs but the server is gone.
    shutil.copy(DATA / "dhclient.leases", link.lease_dir / "dhclient.dc0.leases")
    proc = dhclient()
    check = link.doctor().check("dhcp")
    assert check["status"] == "failure", check
    assert check["summary"] == (
        f"{IFACE} has no IPv4 address: its DHCP lease for 203.0.113.83 from {SERVER} "
        f"expired 2026-11-25 15:05:38 UTC and dhclient (pid {proc.pid}) got no new one"
    )


def test_lease_from_a_real_server_is_ok(link, dnsmasq, dhclient):
    dhclient("-1")
    _wait(lambda: link.ipv4(), "dhclient to bind a lease", timeout=15)
    (address,) = link.ipv4()
    assert ipaddress.ip_interface(address) in ipaddress.ip_network("203.0.113.0/24")
    check = link.doctor().check("dhcp")
    assert check["status"] == "ok", check
    assert check["summary"] == f"IPv4 addresses: {IFACE} {address}"
    (row,) = [i for i in check["data"]["interfaces"] if i["name"] == IFACE]
    lease = row["lease"]
    assert lease["path"] == str(link.tmp / "dhclient.leases")
    assert (lease["address"], lease["server"], lease["expired"]) == (
        address.split("/")[0],
        SERVER,
        False,
    )
    assert any(f"from server {SERVER}" in d for d in check["details"])
    # The probe works next to a running dhclient (which holds UDP port 68 too).
    probed = link.doctor("--probe-dhcp", IFACE).check("dhcp")
    assert probed["status"] == "ok", probed
    assert probed["summary"] == (
        f"IPv4 addresses: {IFACE} {address}; DHCP server {SERVER} offered "
        f"{address.split('/')[0]} on {IFACE}"
    )


def test_expired_lease_without_client_is_a_warning(link):
    # The client died, the address it had leased lingers: another machine may be
    # given it.
    shutil.copy(DATA / "dhclient.leases", link.lease_dir / "dhclient.leases")
    link.vm.run(["ip", "addr", "add", "203.0.113.83/24", "dev", IFACE], check=True)
    check = link.doctor().check("dhcp")
    assert check["status"] == "warning", check
    assert check["summary"] == (
        f"{IFACE}'s DHCP lease for 203.0.113.83 expired 2026-11-25 15:05:38 UTC and "
        "no DHCP client runs to renew it"
    )
    assert check["details"][0] == f"IPv4 addresses: {IFACE} 203.0.113.83/24"


def test_probe_reports_the_offer_and_takes_no_lease(link, dnsmasq):
    # rp_filter=1 in the VM namespace: the kernel then drops the server's reply to
    # an address-less interface before any UDP socket sees it. The probe must
    # still hear it (it reads a packet socket), like dhclient does.
    for conf in ("all", IFACE):
        link.vm.run(["sysctl", "-qw", f"net.ipv4.conf.{conf}.rp_filter=1"], check=True)
    run = link.doctor("--probe-dhcp", IFACE)
    check = run.check("dhcp")
    assert check["status"] == "failure", check
    (row,) = [i for i in check["data"]["interfaces"] if i["name"] == IFACE]
    (offer,) = row["probe"]["offers"]
    assert offer["server"] == SERVER
    assert check["summary"].endswith(
        f"; DHCP server {SERVER} offered {offer['address']} on {IFACE}"
    )
    # Bounded by the 4 s probe window; the margin is for starting Python on a
    # loaded machine, not for the probe.
    assert run.elapsed < 4 + 3, f"took {run.elapsed:.2f} s"
    # Only an offer: no REQUEST reached the server, no lease was written, and the
    # interface is as it was.
    log = _read(link.tmp / "dnsmasq.log")
    assert f"DHCPOFFER(ds0) {offer['address']} {link.mac}" in log
    assert "DHCPREQUEST" not in log and "DHCPACK" not in log
    assert link.mac not in _read(link.tmp / "dnsmasq.leases")
    assert link.ipv4() == []


def test_probe_without_server_says_nobody_answered(link):
    run = link.doctor("--probe-dhcp", IFACE)
    check = run.check("dhcp")
    assert check["status"] == "failure"
    assert check["summary"].endswith(f"; no DHCP server answered on {IFACE} within 4 s")
    assert any("VBoxManage showvminfo" in h for h in check["hints"])
    assert run.elapsed < 4 + 3, f"took {run.elapsed:.2f} s"


def test_probe_of_an_unknown_interface_is_an_error(link):
    check = link.doctor("--probe-dhcp", "eth9").check("dhcp")
    assert check["status"] == "error"
    assert check["summary"] == (
        f"--probe-dhcp eth9: no such interface here (interfaces: {IFACE}, lo)"
    )


def test_probe_needs_root(link, unprivileged_venv):
    # nobody cannot read pytest's tmp_path (0700): a config it can read.
    with tempfile.TemporaryDirectory(prefix="dhcp-test-") as scratch:
        os.chmod(scratch, 0o755)
        config = Path(scratch) / "config.toml"
        config.write_text(f'[host]\nlease_dirs = ["{scratch}"]\n')
        config.chmod(0o644)
        run = _run_as_nobody(link, unprivileged_venv, config)
    check = run.check("dhcp")
    assert check["status"] == "failure", check
    assert check["summary"].endswith(
        f"; DHCP probe on {IFACE} not sent: "
        "it needs root (a raw socket and UDP port 68)"
    )
    root_hint = f"sudo shipyard-doctor check --probe-dhcp {IFACE}"
    assert any(root_hint in h for h in check["hints"])


def _run_as_nobody(link: Link, venv: Path, config: Path) -> DoctorRun:
    return run_doctor(
        "check",
        "--json",
        "--only",
        "dhcp",
        "--probe-dhcp",
        IFACE,
        netns=link.vm,
        config=config,
        python=str(venv / "bin" / "python"),
        as_nobody=True,
    )
