"""dhcp fix: ask for a DHCP lease again, on the interface that has no address only.

A client whose requests went unanswered waits for its next attempt (ISC dhclient:
`retry`, 5 minutes by default) even once the server is back, and an interface with
no client never asks at all. The fix asks now, the way each client is told to:

- dhclient: a one-shot ``dhclient -1`` with the running client's own options: its
  lease file (-lf), pid file (-pf), configuration (-cf) and above all its script
  (-sf: another script could configure the wrong host). Once the new client holds
  a lease, the old one is stopped; the new one stays to renew. When no server
  answers it exits non-zero and nothing has changed.
- no client: a dhclient for that interface only, with its lease and pid files
  (dhclient.IFACE.leases, dhclient.IFACE.pid) in the first ``[host] lease_dirs``
  directory, so the check finds the lease. Its script is ``[host] dhclient_script``,
  else dhclient's default, but only in PID 1's network namespace: the default
  script rewrites /etc/resolv.conf, which in any other namespace belongs to the
  host outside it.
- udhcpc: a one-shot ``udhcpc -n -q`` with the running one's options (BusyBox 1.35
  ignores SIGUSR1 until it holds a lease); the old one, at its next try, takes the
  lease over. dhcpcd: ``dhcpcd -n IFACE``; systemd-networkd: ``networkctl
  reconfigure IFACE``; then a wait for the address.

The engine runs the check again: an interface still without an address rolls the
fix back.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from shipyard_doctor.fixing import (
    Action,
    Fix,
    FixError,
    FixOptions,
    Plan,
    RunCommand,
    Step,
)
from shipyard_doctor.model import Result
from shipyard_doctor.records import field, record

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.journal import RunJournal
    from shipyard_doctor.host.dhcp import DhcpClient
    from shipyard_doctor.host.gateway import Host

CHECK = "dhcp"
WAIT_SECONDS = 15.0  # dhcpcd -n, networkctl return at once; the lease comes later
ONE_SHOT_SECONDS = 90.0  # dhclient -1 gives up after its `timeout` (default 60 s)
# Flags of a running client that a one-shot request must not copy.
NOT_FOR_ONE_SHOT = {
    "dhclient": frozenset({"-d", "-q", "-1", "-nw", "-w", "-n", "-r", "-x"}),
    "udhcpc": frozenset({"-f", "-b", "-n", "-q", "-R"}),
}
# How each says it gave up without a lease: dhclient -1 exits 2, and says so only
# with -v; udhcpc -n always prints it.
NO_LEASE = {
    "dhclient": r"Unable to obtain a lease| exited 2(:|$)",
    "udhcpc": r"no lease, failing",
}


@record
class LeaseRequest(RunCommand):
    """``dhclient -1``, ``udhcpc -n -q``: the files it writes are backed up first
    (undo restores them), and a client that got no lease says no server answered."""

    interface: str = ""
    backs_up: tuple[str, ...] = ()
    no_lease: str = NO_LEASE["dhclient"]

    def apply(self, journal: RunJournal) -> None:
        for path in self.backs_up:
            journal.backup(path)
        try:
            super().apply(journal)
        except FixError as exc:
            if not re.search(self.no_lease, str(exc)):
                raise
            raise FixError(
                f"no DHCP server answered on {self.interface}: {exc}"
            ) from exc


@record
class AwaitAddress(Step):
    """Wait for a client that was only told to ask (it answers in the background)."""

    interface: str
    seconds: float
    has_address: Callable[[], bool] = field(compare=False)

    def describe(self) -> str:
        return f"wait up to {self.seconds:g} s for an IPv4 address on {self.interface}"

    def is_done(self) -> bool:
        return self.has_address()

    def apply(self, journal: RunJournal) -> None:
        deadline = time.monotonic() + self.seconds
        while not self.has_address():
            if time.monotonic() > deadline:
                raise FixError(
                    f"no DHCP server answered on {self.interface}: no address "
                    f"within {self.seconds:g} s"
                )
            time.sleep(0.2)


@record
class Renewal:
    """What the fix does for one interface; without steps, ``summary`` says why not."""

    summary: str
    steps: tuple[Step, ...] = ()
    risk: str = ""
    note: str = ""


class DhcpFix(Fix):
    id = "dhcp"
    title = "Ask for a DHCP lease again on the interface without an address"
    repairs = (CHECK,)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.host.dhcpstate import DhcpEvidence, requests_from_data

        found = result.evidence
        failed = (
            found.requests
            if isinstance(found, DhcpEvidence)
            else requests_from_data(result.data)
        )
        if not failed:
            return Plan(
                self.id, CHECK, "every interface has an address: no lease to ask"
            )
        if not host.is_root:
            return Plan(
                self.id,
                CHECK,
                "asking for a DHCP lease needs root: sudo shipyard-doctor fix dhcp",
            )
        renewals = [_renewal(r.interface, list(r.clients), host) for r in failed]
        return Plan(
            self.id,
            CHECK,
            "; ".join(r.summary for r in renewals),
            steps=tuple(step for r in renewals for step in r.steps),
            risk=" ".join(r.risk for r in renewals if r.risk),
            notes=tuple(r.note for r in renewals if r.note),
        )


def _renewal(iface: str, clients: list[DhcpClient], host: Host) -> Renewal:
    if not clients:
        return _start_dhclient(iface, host)
    # The client that names the interface before one that serves every interface.
    client = sorted(clients, key=lambda c: iface not in c.interfaces)[0]
    name, pid = client.name, client.process.pid
    has_address = _has_address(host, iface)
    if name.startswith("dhclient"):
        return _renew_dhclient(iface, client, host)
    if name == "udhcpc":
        return _renew_udhcpc(iface, client, host)
    if name == "dhcpcd":
        tell = RunCommand(
            (_binary(client, host), "-n", iface),
            f"dhcpcd (pid {pid}) rebinds {iface}",
            done_when=has_address,
        )
    elif name == "systemd-networkd":
        tell = RunCommand(
            (host.find_binary("networkctl") or "networkctl", "reconfigure", iface),
            f"systemd-networkd (pid {pid}) starts over on {iface}, DHCP included",
            done_when=has_address,
        )
    else:
        return Renewal(
            f"{name} (pid {pid}) manages {iface}: ask it to connect again, e.g. "
            f"nmcli device connect {iface}"
        )
    return Renewal(
        f"tell {name} (pid {pid}) to ask for a lease on {iface} now",
        (tell, AwaitAddress(iface, WAIT_SECONDS, has_address)),
    )


def _renew_dhclient(iface: str, client: DhcpClient, host: Host) -> Renewal:
    pid, argv = client.process.pid, client.process.cmdline
    others = [i for i in client.interfaces if i != iface]
    if others or not client.interfaces:
        serves = ", ".join(others) if others else "every interface"
        return Renewal(
            f"dhclient (pid {pid}) serves {serves} too: renewing {iface} alone would "
            f"take a second client; restart that one (dhclient -x, then start it "
            "again as it was started)"
        )
    drop = NOT_FOR_ONE_SHOT["dhclient"]
    options = [a for a in argv[1:] if a not in drop and a != iface]
    script, refusal = _script("dhclient", options, host)
    if refusal:
        return Renewal(f"{iface}: {refusal}")
    return Renewal(
        f"ask for a lease on {iface} now with a one-shot dhclient using the options "
        f"of dhclient (pid {pid}), whose requests got no lease; then stop that one",
        (
            _dhclient_request(_binary(client, host), [*options, *script], iface, host),
            Action(
                f"stop dhclient (pid {pid}), which got no lease on {iface}: the new "
                "client renews the lease from now on",
                run=lambda: _stop(host, pid, argv),
                done_when=lambda: not _same_process(host, pid, argv),
            ),
        ),
        risk=f"undo releases the new lease but cannot restart dhclient (pid {pid}): "
        f"start it again the way it was started (ifup {iface}, or its service)",
    )


def _renew_udhcpc(iface: str, client: DhcpClient, host: Host) -> Renewal:
    pid, argv = client.process.pid, list(client.process.cmdline)
    if "-p" in argv:  # the pid file stays the running client's
        del argv[argv.index("-p") : argv.index("-p") + 2]
    options = [a for a in argv[1:] if a not in NOT_FOR_ONE_SHOT["udhcpc"]]
    script, refusal = _script("udhcpc", options, host)
    if refusal:
        return Renewal(f"{iface}: {refusal}")
    request = LeaseRequest(
        (_binary(client, host), "-n", "-q", *options, *script),
        f"ask for a lease on {iface} once; it fails if no DHCP server answers",
        timeout=ONE_SHOT_SECONDS,
        done_when=_has_address(host, iface),
        interface=iface,
        no_lease=NO_LEASE["udhcpc"],
    )
    return Renewal(
        f"ask for a lease on {iface} now with a one-shot udhcpc using the options of "
        f"udhcpc (pid {pid}), which ignores SIGUSR1 until it has a lease",
        (request,),
        note=f"udhcpc (pid {pid}) keeps running and takes the lease over at its next "
        "try; undo cannot take the address back (udhcpc keeps no lease file)",
    )


def _start_dhclient(iface: str, host: Host) -> Renewal:
    binary = host.find_binary("dhclient")
    if binary is None:
        return Renewal(
            f"{iface} has no DHCP client and none is installed to start (dhclient): "
            f"install isc-dhcp-client, or give {iface} a static address"
        )
    state = (host.config.host.lease_dirs or ("/var/lib/dhcp",))[0]
    options = ["-lf", f"{state}/dhclient.{iface}.leases"]
    options += ["-pf", f"{state}/dhclient.{iface}.pid"]
    script, refusal = _script("dhclient", options, host)
    if refusal:
        return Renewal(f"{iface} has no DHCP client, and {refusal}")
    return Renewal(
        f"start dhclient for {iface}, which has no DHCP client (its lease and pid "
        f"files in {state})",
        (_dhclient_request(binary, [*options, *script], iface, host),),
        note=f"dhclient keeps running to renew {iface}'s lease; undo releases the "
        "lease and stops it",
    )


def _dhclient_request(
    binary: str, options: Sequence[str], iface: str, host: Host
) -> LeaseRequest:
    return LeaseRequest(
        (binary, "-1", *options, iface),
        f"ask for a lease on {iface}; it fails if no DHCP server answers",
        inverse=(binary, "-r", *options, iface),
        timeout=ONE_SHOT_SECONDS,
        done_when=_has_address(host, iface),
        interface=iface,
        backs_up=tuple(
            _value(options, flag) for flag in ("-lf", "-pf") if flag in options
        ),
    )


def _script(
    client: str, options: Sequence[str], host: Host
) -> tuple[list[str], str | None]:
    """(script arguments to add, or why the client must not run): the client's own
    script, else ``[host] dhclient_script`` (for dhclient), else the client's
    default, only in PID 1's network namespace."""
    flag = "-sf" if client == "dhclient" else "-s"
    if flag in options:
        return [], None
    configured = host.config.host.dhclient_script if client == "dhclient" else ""
    if configured:
        return [flag, configured], None
    if host.in_own_netns(1):
        return [], None
    remedy = (
        "set [host] dhclient_script to a script for this namespace"
        if client == "dhclient"
        else f"give {client} a script for this namespace ({flag} PROG)"
    )
    return [], (
        f"{client}'s default script is not used here: it rewrites /etc/resolv.conf, "
        "which belongs to the host outside this network namespace (PID 1 is in "
        f"another); {remedy}"
    )


def _value(options: Sequence[str], flag: str) -> str:
    return options[list(options).index(flag) + 1]


def _binary(client: DhcpClient, host: Host) -> str:
    cmdline = client.process.cmdline
    first = cmdline[0] if cmdline else client.name
    if os.path.isabs(first):
        return first
    return host.find_binary(client.name) or first


def _has_address(host: Host, iface: str) -> Callable[[], bool]:
    from shipyard_doctor.host import netinfo
    from shipyard_doctor.host.gateway import Host

    def check() -> bool:
        with Host(host.config, host.environ) as fresh:  # nothing cached: it is new
            return any(
                i.name == iface and i.routable_ipv4 for i in netinfo.interfaces(fresh)
            )

    return check


def _same_process(host: Host, pid: int, argv: Sequence[str]) -> bool:
    """Still the client the check saw (a zombie or a reused pid is not)."""
    info = host.process(pid)
    return info is not None and info.cmdline == tuple(argv)


def _stop(host: Host, pid: int, argv: Sequence[str]) -> None:
    from shipyard_doctor.host import processes

    # dhclient exits on SIGTERM without touching the lease.
    processes.stop(pid, lambda: _same_process(host, pid, argv), timeout=5)
