"""DHCP facts: which DHCP clients run, what their lease files say, and a DISCOVER probe.

"CoreOS would not get an IP address from DHCP" has three usual causes, and each leaves
a different trace: no client runs for the interface (no process), a client runs but no
server answers (a client, no lease or an expired one), or the VM's NIC is not really
connected (no carrier, or nothing answers a DHCPDISCOVER). Clients are matched to the
doctor's own network namespace, so a dhclient serving another namespace (or the host of
a container) is not taken for this one's.

The probe (only for interfaces the user names with ``--probe-dhcp``) sends a
DHCPDISCOVER, repeated each second as clients do, and listens for OFFERs. It never
sends a REQUEST, so no lease is taken and no address changes. Replies are read from
a packet socket: on an interface without an address the kernel's reverse-path filter
(rp_filter) drops the server's reply before any UDP socket sees it, which would turn
a working server into "no answer".
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.host import files, netinfo
from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.dhcpwire import IPv4
    from shipyard_doctor.host.gateway import Host, ProcessInfo
    from shipyard_doctor.host.netinfo import Interface

#: Process names of the DHCP clients a Linux Docker host is likely to run.
CLIENT_NAMES = frozenset(
    {
        "dhclient",
        "dhclient3",
        "dhcpcd",
        "systemd-networkd",
        "NetworkManager",
        "udhcpc",
    }
)
#: Clients that manage interfaces from their own configuration, not their argv.
MANAGERS = frozenset({"systemd-networkd", "NetworkManager"})

#: dhclient options that take a value (`dhclient --help` of 4.4.3, plus -g relay of
#: dhclient(8)); the words left over are interfaces.
_DHCLIENT_VALUE_OPTIONS = frozenset(
    {"-p", "-D", "-s", "-g", "-cf", "-df", "-lf", "-pf", "-e", "-sf"}
    | {"--dad-wait-time", "--prefix-len-hint", "--decline-wait-time"}
    | {"--address-prefix-len"}
)

_MAX_LEASE_FILE = 1 << 20


# --- clients -----------------------------------------------------------------------


@record
class DhcpClient:
    """A running DHCP client process, and what its command line says it serves."""

    process: ProcessInfo
    interfaces: tuple[str, ...]  # named on its command line; () = every interface
    lease_file: str | None  # dhclient's -lf
    same_netns: bool | None  # None: its network namespace could not be read

    @property
    def name(self) -> str:
        return self.process.name

    def serves(self, interface: str) -> bool:
        return not self.interfaces or interface in self.interfaces

    def describe(self) -> str:
        return self.process.describe()

    def to_dict(self) -> dict[str, object]:
        return {
            "pid": self.process.pid,
            "name": self.name,
            "cmdline": list(self.process.cmdline),
            "interfaces": list(self.interfaces),
            "lease_file": self.lease_file,
        }


@host_fact
def clients(host: Host) -> tuple[DhcpClient, ...]:
    """DHCP clients in the doctor's network namespace (or whose namespace is hidden)."""
    return _clients(host)


def _clients(host: Host) -> tuple[DhcpClient, ...]:
    known = [i.name for i in netinfo.interfaces(host)]
    found = []
    for info in host.processes_named(CLIENT_NAMES):
        same = host.in_own_netns(info.pid)
        if same is False:
            continue  # it serves another namespace (a test host, a container)
        interfaces, lease_file = parse_client_argv(info.name, info.cmdline, known)
        found.append(DhcpClient(info, interfaces, lease_file, same))
    return tuple(found)


def parse_client_argv(
    name: str, argv: Sequence[str], known: Iterable[str] = ()
) -> tuple[tuple[str, ...], str | None]:
    """(interfaces named, dhclient lease file) from a DHCP client's command line.

    dhclient and dhcpcd without interface arguments serve every interface; BusyBox
    udhcpc without ``-i`` serves eth0 (its built-in default); systemd-networkd and
    NetworkManager choose interfaces from their configuration.
    """
    if name in MANAGERS:
        return (), None
    args = list(argv[1:])
    interfaces: list[str] = []
    lease_file = None
    if name.startswith("dhclient"):
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in _DHCLIENT_VALUE_OPTIONS and i + 1 < len(args):
                if arg == "-lf":
                    lease_file = args[i + 1]
                i += 2
                continue
            if not arg.startswith("-"):
                interfaces.append(arg)
            i += 1
        return tuple(interfaces), lease_file
    if name == "udhcpc":
        for i, arg in enumerate(args):
            if arg in ("-i", "--interface") and i + 1 < len(args):
                interfaces.append(args[i + 1])
            elif arg.startswith("--interface="):
                interfaces.append(arg.partition("=")[2])
            elif arg.startswith("-i") and len(arg) > 2:
                interfaces.append(arg[2:])
        return tuple(interfaces) or ("eth0",), None
    # dhcpcd: many options take a value (-h HOSTNAME), so only words that name an
    # interface of this host count; none means it serves every interface.
    names = set(known)
    return tuple(a for a in args if a in names), None


# --- leases ------------------------------------------------------------------------


@record
class Lease:
    """One DHCPv4 lease as a client recorded it."""

    path: str
    client: str  # dhclient, systemd-networkd (or NetworkManager), dhcpcd
    interface: str | None
    address: IPv4 | None
    server: IPv4 | None
    router: IPv4 | None = None
    renew: datetime | None = None
    rebind: datetime | None = None
    expire: datetime | None = None  # None: unknown or infinite
    timing: str = ""  # how renew/expire were found ("", "file mtime + LIFETIME")

    def expired(self, now: datetime) -> bool:
        return self.expire is not None and self.expire <= now

    def to_dict(self, now: datetime) -> dict[str, object]:
        return {
            "path": self.path,
            "client": self.client,
            "address": str(self.address) if self.address else None,
            "server": str(self.server) if self.server else None,
            "expire": self.expire.isoformat() if self.expire else None,
            "expired": self.expired(now),
        }

    def describe(self, now: datetime) -> str:
        parts = [f"{self.client} lease {self.path}"]
        if self.interface:
            parts.append(f"for {self.interface}")
        if self.address:
            parts.append(f": {self.address}")
        if self.server:
            parts.append(f"from server {self.server}")
        if self.router:
            parts.append(f"(router {self.router})")
        text = " ".join(parts).replace(" :", ":")
        if self.expire is not None:
            word = "expired" if self.expired(now) else "expires"
            text += f", {word} {format_time(self.expire)}"
            if self.renew is not None and not self.expired(now):
                text += f" (renewal due {format_time(self.renew)})"
            if self.timing:
                text += f" [{self.timing}]"
        return text


@record
class LeaseScan:
    """The DHCP leases read from the lease directories, and the unreadable files."""

    leases: tuple[Lease, ...]
    unreadable: tuple[str, ...] = ()  # "path: reason"
    searched: tuple[str, ...] = ()  # dirs and files looked at


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@host_fact
def leases(host: Host, known: tuple[Interface, ...]) -> LeaseScan:
    """Every lease found in ``[host] lease_dirs`` and the running dhclients' -lf."""
    return _scan(host, known)


def _scan(host: Host, known: tuple[Interface, ...]) -> LeaseScan:
    paths: list[Path] = []
    searched: list[str] = []
    for directory in host.config.host.lease_dirs:
        searched.append(directory)
        try:
            entries = sorted(Path(directory).iterdir())
        except OSError:
            continue
        paths.extend(p for p in entries if _looks_like_lease(p.name))
    for client in clients(host):
        if client.lease_file:
            searched.append(client.lease_file)
            paths.append(Path(client.lease_file))
    found: list[Lease] = []
    unreadable: list[str] = []
    seen: set[str] = set()
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            if not path.is_file():
                continue
            data = files.read_head(path, _MAX_LEASE_FILE)
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError as exc:
            unreadable.append(f"{path}: {(exc.strerror or str(exc)).lower()}")
            continue
        found.extend(parse_lease_file(str(path), data, mtime, known))
    return LeaseScan(tuple(found), tuple(unreadable), tuple(searched))


def _looks_like_lease(name: str) -> bool:
    # networkd names its files by ifindex; everyone else has "lease" in the name.
    return name.isdigit() or "lease" in name


def parse_lease_file(
    path: str, data: bytes, mtime: datetime, known: Sequence[Interface] = ()
) -> list[Lease]:
    """Leases in one file, whichever client wrote it (recognised by content)."""
    from shipyard_doctor.host.dhcpwire import MAGIC_COOKIE  # the wire format's

    name = os.path.basename(path)
    if len(data) >= 240 and data[236:240] == MAGIC_COOKIE:
        return [_dhcpcd_lease(path, data, mtime, _interface_from_name(name, known))]
    text = data.decode("utf-8", "replace")
    if re.search(r"^\s*lease\s*\{", text, re.M):
        return parse_dhclient_leases(text, path)
    if re.search(r"^ADDRESS=", text, re.M):
        if name.isdigit():
            by_index = {i.index: i.name for i in known}
            interface = by_index.get(int(name))
        else:
            interface = _interface_from_name(name, known)
        writer = "NetworkManager" if name.startswith("internal-") else None
        return [
            parse_keyvalue_lease(
                text, path, mtime, interface, writer or "systemd-networkd"
            )
        ]
    return []


_UUID = "[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"


def _interface_from_name(name: str, known: Sequence[Interface]) -> str | None:
    """The interface a lease file is named after: NetworkManager's
    internal-<uuid>-<iface>.lease, dhcpcd's <iface>[-<ssid>].lease and
    dhcpcd-<iface>.lease (dhcpcd 5). Longest known name wins (br-x before br)."""
    stem = re.sub(r"\.leases?$", "", name)
    stem = re.sub(rf"^(internal|dhclient)-{_UUID}-", "", stem)
    stem = stem.removeprefix("dhcpcd-").removeprefix("dhclient.")
    for iface in sorted((i.name for i in known), key=len, reverse=True):
        if stem == iface or stem.startswith(f"{iface}-"):
            return iface
    return None


_DHCLIENT_TIME = re.compile(
    r"^\s*(?:\d\s+(?P<date>\d{4}/\d{1,2}/\d{1,2}\s+\d{1,2}:\d{2}:\d{2})"
    r"|epoch\s+(?P<epoch>\d+)|never)"
)


def _dhclient_time(value: str) -> datetime | None:
    # "4 2017/07/27 18:02:30" is UTC; "epoch 1500000000; # ..." with db-time-format
    # local; "never" for an infinite lease.
    m = _DHCLIENT_TIME.match(value)
    if not m:
        return None
    if m.group("date"):
        return datetime.strptime(m.group("date"), "%Y/%m/%d %H:%M:%S").replace(
            tzinfo=UTC
        )
    if m.group("epoch"):
        return datetime.fromtimestamp(int(m.group("epoch")), UTC)
    return None


def _ipv4(text: str | None) -> IPv4 | None:
    if not text:
        return None
    try:
        return ipaddress.IPv4Address(text.split()[0].split(",")[0].strip())
    except ValueError:
        return None


def parse_dhclient_leases(text: str, path: str) -> list[Lease]:
    """The IPv4 ``lease { ... }`` blocks of an ISC dhclient lease file, in file order
    (dhclient appends, so the last one per interface is the newest)."""
    result = []
    for body in _lease_blocks(text):
        values: dict[str, str] = {}
        for line in body:
            statement = line.strip().rstrip(";").strip()
            if statement.startswith("option "):
                key, _, value = statement[len("option ") :].partition(" ")
                values[f"option {key}"] = value
            else:
                key, _, value = statement.partition(" ")
                values[key] = value
        result.append(
            Lease(
                path=path,
                client="dhclient",
                interface=values.get("interface", "").strip('"') or None,
                address=_ipv4(values.get("fixed-address")),
                server=_ipv4(values.get("option dhcp-server-identifier")),
                router=_ipv4(values.get("option routers")),
                renew=_dhclient_time(values.get("renew", "")),
                rebind=_dhclient_time(values.get("rebind", "")),
                expire=_dhclient_time(values.get("expire", "")),
            )
        )
    return result


def _lease_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    depth = 0
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip() if '"' not in line else line.strip()
        if current is None:
            if re.match(r"^lease\s*\{", stripped):  # not lease6: IPv6 is not checked
                current, depth = [], 1
            continue
        depth += stripped.count("{") - stripped.count("}")
        if depth <= 0:
            blocks.append(current)
            current = None
        elif depth == 1 and stripped:
            current.append(stripped)
    return blocks


def parse_keyvalue_lease(
    text: str,
    path: str,
    mtime: datetime,
    interface: str | None,
    client: str = "systemd-networkd",
) -> Lease:
    """A systemd-networkd (or NetworkManager internal client) lease: KEY=value lines.

    It records durations, not times: the file is rewritten whenever a lease is
    acquired or renewed, so its mtime plus LIFETIME (T1, T2) give expiry (renew)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()

    def after(key: str) -> datetime | None:
        seconds = values.get(key, "")
        return mtime + timedelta(seconds=int(seconds)) if seconds.isdigit() else None

    expire = after("LIFETIME")
    return Lease(
        path=path,
        client=client,
        interface=interface,
        address=_ipv4(values.get("ADDRESS")),
        server=_ipv4(values.get("SERVER_ADDRESS")),
        router=_ipv4(values.get("ROUTER")),
        renew=after("T1"),
        rebind=after("T2"),
        expire=expire,
        timing="file mtime + LIFETIME" if expire else "",
    )


def _dhcpcd_lease(
    path: str, data: bytes, mtime: datetime, interface: str | None
) -> Lease:
    # dhcpcd(8): the lease file is the server's DHCP message itself; "use the file's
    # mtime as when it was issued".
    from shipyard_doctor.host.dhcpwire import parse_dhcp_message

    message = parse_dhcp_message(data)
    seconds = message.u32(51) if message else None
    renew = message.u32(58) if message else None
    return Lease(
        path=path,
        client="dhcpcd",
        interface=interface,
        address=message.yiaddr if message else None,
        server=message.server if message else None,
        router=message.ipv4_option(3) if message else None,
        renew=mtime + timedelta(seconds=renew) if renew is not None else None,
        expire=mtime + timedelta(seconds=seconds) if seconds is not None else None,
        timing="file mtime + lease time" if seconds is not None else "",
    )
