"""The dhcp fix, applied for real on tests/test_dhcp.py's link: a veth pair between
two namespaces we create, dnsmasq serving DHCP on the "network" end, real DHCP
clients (ISC dhclient, BusyBox udhcpc) on the "VM" end, and the doctor inside the VM
namespace. Never the machine's real interfaces. Every client gets a script that
applies the lease inside the namespace only (dhclient's default script would rewrite
the machine's /etc/resolv.conf), and every client the doctor starts is stopped by
pid afterwards.

Proof is twice: the check passes again (the engine's recheck) and the real effect:
the address dnsmasq leased is on the interface and in the client's lease file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_dhcp
from doctor_cli import DoctorRun, run_doctor
from infra import ManagedProcess, stop_process
from shipyard_doctor.config import Config
from shipyard_doctor.fixes.dhcp import DhcpFix
from shipyard_doctor.fixing import FixOptions
from shipyard_doctor.host.dhcp import parse_dhclient_leases
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import Result

IFACE, SERVER, Link = test_dhcp.IFACE, test_dhcp.SERVER, test_dhcp.Link
link, dnsmasq = test_dhcp.link, test_dhcp.dnsmasq  # the fixtures, shared
_read, _wait = test_dhcp._read, test_dhcp._wait
NET = ipaddress.ip_network("203.0.113.0/24")

# dhclient-script's contract (dhclient-script(8)), kept inside the test namespace.
DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
RELEASE|EXPIRE|STOP)
    ip addr del "$old_ip_address/$old_subnet_mask" dev "$interface" ;;
esac
exit 0
"""
# udhcpc's (BusyBox networking/udhcp/dhcpc.c): $1 is the event, $ip and $mask the lease.
UDHCPC_SCRIPT = """#!/bin/sh
echo "$1" >> "$0.events"
case "$1" in
bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;;
esac
exit 0
"""


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def fix_config(link: Link, **host: str) -> Path:
    """The doctor's config: leases and the journal in the test's temp dir."""
    lines = ["[host]", f'lease_dirs = ["{link.lease_dir}"]']
    lines += [f'{key} = "{value}"' for key, value in host.items()]
    lines += ["[fix]", f'journal_dir = "{link.tmp / "journal"}"']
    config = link.tmp / "fix.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def fix(link: Link, config: Path) -> tuple[DoctorRun, list[dict]]:
    run = run_doctor(
        "check", "--fix", "--yes", "--json", "--only", "dhcp", netns=link.vm,
        config=config, timeout=120,
    )  # fmt: skip
    assert run.stderr == "", run.stderr
    return run, run.doc["fixes"]


def undo(link: Link, config: Path) -> DoctorRun:
    run = run_doctor("undo", netns=link.vm, config=config)
    assert run.code == 0, run.stdout + run.stderr
    return run


def snapshot(*paths: Path) -> dict[Path, tuple[bytes, int] | None]:
    """Bytes and mode of each file (None: absent), to compare after undo."""
    return {
        p: (p.read_bytes(), p.stat().st_mode & 0o7777) if p.exists() else None
        for p in paths
    }


def clients_in(link: Link) -> dict[int, list[str]]:
    """DHCP clients running in the VM namespace that use the test's temp dir."""
    found = {}
    for pid in link.vm.pids():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            words = [a.decode() for a in argv]
            if state != "Z" and any(str(link.tmp) in w for w in words):
                found[pid] = words
    return found


@pytest.fixture
def started_clients(link: Link) -> Iterator[None]:
    """Stops (by pid) the clients the doctor started in the VM namespace: they
    daemonize, so no Popen of ours holds them."""
    try:
        yield
    finally:
        pids = list(clients_in(link))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        _wait(lambda: not clients_in(link), "the clients the doctor started to exit")
        for pid in pids:  # our zombie children, when pytest is a subreaper
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


@pytest.fixture
def dhclient(link: Link, started_clients, require_infra) -> Iterator:
    """``dhclient(until)`` starts dhclient on dc0 (its own -cf, -lf, -pf and -sf in
    the temp dir) and waits for ``until`` in its log; it is stopped by pid after.
    Its dhclient.conf says `timeout 5; retry 3600;`: after 5 s without an answer it
    sleeps for an hour, as a VM booted while the DHCP server was down would."""
    require_infra("dhclient")
    (link.tmp / "dhclient.conf").write_text("timeout 5;\nretry 3600;\n")
    script = write_script(link.tmp / "dhclient-script", DHCLIENT_SCRIPT)
    argv = ["dhclient", "-d", "-v", "-cf", str(link.tmp / "dhclient.conf")]
    argv += ["-lf", str(link.tmp / "dhclient.leases")]
    argv += ["-pf", str(link.tmp / "dhclient.pid"), "-sf", str(script), IFACE]
    log = link.tmp / "dhclient.log"
    started: list[ManagedProcess] = []

    def start(until: str) -> ManagedProcess:
        started.append(link.vm.spawn(argv, log_path=log))
        _wait(lambda: until in _read(log), f"dhclient to log {until!r}", timeout=15)
        return started[-1]

    try:
        yield start
    finally:
        for proc in started:
            stop_process(proc)


def leased(link: Link, lease_file: Path) -> str:
    """The address on dc0, checked against the lease file and dnsmasq's leases."""
    (address,) = link.ipv4()
    ip = address.split("/")[0]
    assert ipaddress.ip_interface(address) in NET
    last = parse_dhclient_leases(lease_file.read_text(), str(lease_file))[-1]
    assert (str(last.address), str(last.server)) == (ip, SERVER)
    assert f"{link.mac} {ip}" in _read(link.tmp / "dnsmasq.leases")
    return address


# --- a running dhclient that got no lease ---------------------------------------


def test_renews_with_the_running_dhclients_own_options(link, dhclient, request):
    old = dhclient("sleeping")  # it got no answer and waits an hour to try again
    request.getfixturevalue("dnsmasq")  # the server is back
    lease_file, pid_file = link.tmp / "dhclient.leases", link.tmp / "dhclient.pid"
    before = snapshot(lease_file, pid_file)
    config = fix_config(link)

    _, (report,) = fix(link, config)
    assert report["outcome"] == "applied", report
    assert report["recheck"]["status"] == "ok", report["recheck"]
    address = leased(link, lease_file)
    assert (
        report["message"] == f"applied; dhcp now ok: IPv4 addresses: {IFACE} {address}"
    )
    steps = report["plan"]["steps"]
    options = f"-v -cf {link.tmp}/dhclient.conf -lf {lease_file} -pf {pid_file}"
    options += f" -sf {link.tmp}/dhclient-script"
    assert steps[0].startswith(f"run: /usr/sbin/dhclient -1 {options} {IFACE}  (")
    assert steps[1].startswith(f"stop dhclient (pid {old.pid})")
    # The old client was stopped; the one the fix started (same script) renews.
    assert old.wait(5) is not None
    (new_pid, argv), *_ = clients_in(link).items()
    assert int(pid_file.read_text()) == new_pid
    assert argv[1:] == ["-1", *options.split(), IFACE]

    again, fixes = fix(link, config)
    assert (fixes, again.check("dhcp")["status"]) == ([], "ok")

    undone = undo(link, config)
    assert f"ran: /usr/sbin/dhclient -r {options} {IFACE}" in undone.stdout
    assert f"not reversible: stop dhclient (pid {old.pid})" in undone.stdout
    _wait(lambda: not clients_in(link), "undo to stop the new dhclient")
    assert link.ipv4() == []  # released: the script took the address away
    assert snapshot(lease_file, pid_file) == before


def test_no_server_fails_and_leaves_the_client_alone(link, dhclient):
    old = dhclient("DHCPDISCOVER")
    lease_file, pid_file = link.tmp / "dhclient.leases", link.tmp / "dhclient.pid"
    before = snapshot(lease_file, pid_file)
    started = time.monotonic()
    run, (report,) = fix(link, fix_config(link))
    assert report["outcome"] == "failed", report
    assert report["message"].startswith(
        f"no DHCP server answered on {IFACE}: /usr/sbin/dhclient -1 -v -cf "
    )
    assert report["message"].endswith(
        "exited 2: Unable to obtain a lease on first try.  Exiting.; rolled back"
    )
    assert time.monotonic() - started < 5 + 4  # dhclient.conf: timeout 5
    assert run.code == 1
    assert link.ipv4() == []
    assert old.poll() is None  # still there, as before
    assert list(clients_in(link)) == [old.pid]
    assert snapshot(lease_file, pid_file) == before


# --- no client running -----------------------------------------------------------


def test_starts_dhclient_where_none_runs(link, dnsmasq, started_clients, require_infra):
    require_infra("dhclient")
    script = write_script(link.tmp / "dhclient-script", DHCLIENT_SCRIPT)
    config = fix_config(link, dhclient_script=str(script))
    lease_file = link.lease_dir / f"dhclient.{IFACE}.leases"
    pid_file = link.lease_dir / f"dhclient.{IFACE}.pid"

    _, (report,) = fix(link, config)
    assert report["outcome"] == "applied", report
    assert report["recheck"]["status"] == "ok", report["recheck"]
    plan = report["plan"]
    assert plan["summary"] == (
        f"start dhclient for {IFACE}, which has no DHCP client (its lease and pid "
        f"files in {link.lease_dir})"
    )
    options = f"-lf {lease_file} -pf {pid_file} -sf {script}"
    assert plan["steps"] == [
        f"run: /usr/sbin/dhclient -1 {options} {IFACE}  (ask for a lease on {IFACE}; "
        "it fails if no DHCP server answers)"
    ]
    leased(link, lease_file)
    assert any(str(lease_file) in d for d in report["recheck"]["details"])
    (new_pid,) = clients_in(link)
    assert int(pid_file.read_text()) == new_pid

    again, fixes = fix(link, config)
    assert (fixes, again.check("dhcp")["status"]) == ([], "ok")

    undone = undo(link, config).stdout
    assert f"ran: /usr/sbin/dhclient -r {options} {IFACE}" in undone
    assert f"removed {lease_file} (it did not exist before)" in undone
    _wait(lambda: not clients_in(link), "undo to stop dhclient")
    assert "DHCPRELEASE(ds0)" in _read(link.tmp / "dnsmasq.log")
    assert link.ipv4() == []
    assert not lease_file.exists() and not pid_file.exists()


def test_default_script_is_refused_in_a_namespace(link, require_infra):
    # dhclient-script rewrites /etc/resolv.conf, and this namespace's /etc is the
    # machine's: without [host] dhclient_script the fix starts nothing.
    require_infra("dhclient")
    run, (report,) = fix(link, fix_config(link))
    assert report["outcome"] == "nothing-to-do", report
    assert report["message"] == (
        f"{IFACE} has no DHCP client, and dhclient's default script is not used "
        "here: it rewrites /etc/resolv.conf, which belongs to the host outside this "
        "network namespace (PID 1 is in another); set [host] dhclient_script to a "
        "script for this namespace"
    )
    assert run.code == 1
    assert clients_in(link) == {} and link.ipv4() == []
    assert not (link.tmp / "journal").exists()


def test_lease_that_configures_nothing_is_rolled_back(
    link, dnsmasq, started_clients, require_infra
):
    # A script that applies nothing: dhclient holds a lease, dc0 has no address,
    # so the check still fails and the engine rolls the fix back.
    require_infra("dhclient")
    config = fix_config(link, dhclient_script="/bin/true")
    lease_file = link.lease_dir / f"dhclient.{IFACE}.leases"
    pid_file = link.lease_dir / f"dhclient.{IFACE}.pid"
    run, (report,) = fix(link, config)
    assert report["outcome"] == "rolled-back", report
    recheck = report["recheck"]["summary"]
    assert recheck.startswith(f"{IFACE} has no IPv4 address, though dhclient (pid ")
    assert report["message"] == f"rolled back: dhcp still failure: {recheck}"
    options = f"-lf {lease_file} -pf {pid_file} -sf /bin/true"
    assert report["rollback"] == [
        f"ran: /usr/sbin/dhclient -r {options} {IFACE}",
        f"removed {pid_file} (it did not exist before)",
        f"removed {lease_file} (it did not exist before)",
    ]
    _wait(lambda: not clients_in(link), "the rollback to stop dhclient")
    assert not lease_file.exists() and link.ipv4() == []
    assert run.code == 1


# --- BusyBox udhcpc --------------------------------------------------------------


def test_udhcpc_gets_a_one_shot_with_its_own_options(
    link, request, started_clients, require_infra
):
    require_infra("busybox")
    applet = link.tmp / "udhcpc"  # run as "udhcpc", the way BusyBox installs it
    applet.symlink_to(shutil.which("busybox"))
    script = write_script(link.tmp / "udhcpc-script", UDHCPC_SCRIPT)
    argv = [str(applet), "-f", "-i", IFACE, "-s", str(script), "-t", "1", "-T", "4"]
    argv += ["-A", "3600", "-p", str(link.tmp / "udhcpc.pid")]
    log = link.tmp / "udhcpc.log"
    old = link.vm.spawn(argv, log_path=log)
    try:
        # One unanswered DISCOVER, then it waits an hour; SIGUSR1 would not wake it.
        events = link.tmp / "udhcpc-script.events"
        _wait(lambda: "leasefail" in _read(events), "udhcpc to give up")
        request.getfixturevalue("dnsmasq")
        config = fix_config(link)
        _, (report,) = fix(link, config)
        assert report["outcome"] == "applied", report
        assert report["recheck"]["status"] == "ok", report["recheck"]
        assert report["plan"]["steps"][0].startswith(
            f"run: {applet} -n -q -i {IFACE} -s {script} -t 1 -T 4 -A 3600  ("
        )
        (address,) = link.ipv4()
        assert f"{link.mac} {address.split('/')[0]}" in _read(
            link.tmp / "dnsmasq.leases"
        )
        assert old.poll() is None  # left running, to renew at its next try
        again, fixes = fix(link, config)
        assert (fixes, again.check("dhcp")["status"]) == ([], "ok")
    finally:
        stop_process(old)


# --- plans for the clients this machine cannot run here --------------------------


def client_result(name: str, cmdline: list[str], interfaces: list[str]) -> Result:
    """A failed dhcp result for dc0, shaped as checks/dhcp.py writes its data."""
    client = {"pid": 4242, "name": name, "cmdline": cmdline}
    client |= {"interfaces": interfaces, "lease_file": None}
    row = {"name": IFACE, "state": "no-address", "ipv4": [], "clients": [4242]}
    row |= {"lease": None, "probe": None}
    data = {"interfaces": [row], "clients": [client], "unreadable": []}
    return Result.failure(f"{IFACE} has no IPv4 address", data=data)


@pytest.mark.parametrize(
    ("name", "cmdline", "interfaces", "argv"),
    [
        ("dhcpcd", ["/usr/sbin/dhcpcd", "-q", IFACE], [IFACE],
         ("/usr/sbin/dhcpcd", "-n", IFACE)),
        ("systemd-networkd", ["/lib/systemd/systemd-networkd"], [],
         ("/usr/bin/networkctl", "reconfigure", IFACE)),
    ],
)  # fmt: skip
def test_plans_for_dhcpcd_and_networkd(name, cmdline, interfaces, argv, require_infra):
    require_infra("networkctl")  # root, and networkctl where Debian puts it
    result = client_result(name, cmdline, interfaces)
    plan = DhcpFix().plan(result, Host(Config()), FixOptions())
    tell, wait = plan.steps
    assert (tell.argv, tell.inverse) == (argv, None)
    assert wait.describe() == f"wait up to 15 s for an IPv4 address on {IFACE}"
    assert plan.summary == f"tell {name} (pid 4242) to ask for a lease on {IFACE} now"


def test_a_dhclient_serving_other_interfaces_too_is_left_alone(require_infra):
    require_infra()
    result = client_result("dhclient", ["dhclient", "eth1", IFACE], ["eth1", IFACE])
    plan = DhcpFix().plan(result, Host(Config()), FixOptions())
    assert plan.steps == ()
    assert plan.summary.startswith(
        f"dhclient (pid 4242) serves eth1 too: renewing {IFACE} alone would take a "
        "second client"
    )
