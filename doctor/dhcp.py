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

import contextlib
import ipaddress
import os
import re
import secrets
import select
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor import netinfo

if TYPE_CHECKING:
    from shipyard_doctor.host import Host, ProcessInfo
    from shipyard_doctor.netinfo import Interface

IPv4 = ipaddress.IPv4Address

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

MAGIC_COOKIE = b"\x63\x82\x53\x63"  # RFC 2131 section 3
BOOTREQUEST, BOOTREPLY = 1, 2
DHCPDISCOVER, DHCPOFFER = 1, 2
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4  # linux/if_packet.h
_MAX_LEASE_FILE = 1 << 20


# --- clients -----------------------------------------------------------------------


@dataclass(frozen=True)
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


def clients(host: Host) -> tuple[DhcpClient, ...]:
    """DHCP clients in the doctor's network namespace (or whose namespace is hidden)."""
    return host.memo("dhcp.clients", lambda: _clients(host))


def _clients(host: Host) -> tuple[DhcpClient, ...]:
    import psutil

    known = [i.name for i in netinfo.interfaces(host)]
    own = _netns_inode("self")
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] not in CLIENT_NAMES:
            continue
        info = host.process(proc.pid)
        if info is None:
            continue
        theirs = _netns_inode(str(proc.pid))
        same = None if theirs is None or own is None else theirs == own
        if same is False:
            continue  # it serves another namespace (a test host, a container)
        interfaces, lease_file = parse_client_argv(info.name, info.cmdline, known)
        found.append(DhcpClient(info, interfaces, lease_file, same))
    return tuple(found)


def _netns_inode(pid: str) -> int | None:
    # Reading another user's /proc/PID/ns/net needs ptrace rights (root).
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class LeaseScan:
    leases: tuple[Lease, ...]
    unreadable: tuple[str, ...] = ()  # "path: reason"
    searched: tuple[str, ...] = ()  # dirs and files looked at


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def leases(host: Host, known: Iterable[Interface]) -> LeaseScan:
    """Every lease found in ``[host] lease_dirs`` and the running dhclients' -lf."""
    names = tuple(known)
    return host.memo("dhcp.leases", lambda: _scan(host, names))


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
            data = path.read_bytes()[:_MAX_LEASE_FILE]
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
        return IPv4(text.split()[0].split(",")[0].strip())
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


# --- the DHCP message and the probe ------------------------------------------------


@dataclass(frozen=True)
class DhcpMessage:
    op: int
    xid: int
    yiaddr: IPv4
    siaddr: IPv4
    chaddr: bytes
    options: dict[int, bytes]

    @property
    def message_type(self) -> int | None:
        value = self.options.get(53)
        return value[0] if value else None

    @property
    def server(self) -> IPv4 | None:
        """The server identifier (option 54), else the next-server field."""
        return self.ipv4_option(54) or (self.siaddr if int(self.siaddr) else None)

    def ipv4_option(self, code: int) -> IPv4 | None:
        value = self.options.get(code, b"")
        return IPv4(value[:4]) if len(value) >= 4 else None

    def u32(self, code: int) -> int | None:
        value = self.options.get(code, b"")
        return int(struct.unpack("!I", value[:4])[0]) if len(value) >= 4 else None


def parse_dhcp_message(data: bytes) -> DhcpMessage | None:
    """A BOOTP/DHCP message (RFC 2131 section 2); None if it is not one."""
    if len(data) < 240 or data[236:240] != MAGIC_COOKIE:
        return None
    op, _htype, hlen = data[0], data[1], data[2]
    (xid,) = struct.unpack("!I", data[4:8])
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        length = data[i + 1]
        # Long options are split into several instances (RFC 3396): concatenate.
        options[code] = options.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return DhcpMessage(
        op=op,
        xid=xid,
        yiaddr=IPv4(data[16:20]),
        siaddr=IPv4(data[20:24]),
        chaddr=data[28 : 28 + min(hlen, 16)],
        options=options,
    )


def build_discover(xid: int, mac: bytes) -> bytes:
    """A DHCPDISCOVER (RFC 2131): broadcast flag set (we have no address to receive a
    unicast reply on), chaddr = the interface's MAC, padded to BOOTP's 300 bytes."""
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        BOOTREQUEST,
        1,  # htype: Ethernet
        6,  # hlen
        0,  # hops
        xid,
        0,  # secs
        0x8000,  # flags: broadcast
        bytes(4),  # ciaddr
        bytes(4),  # yiaddr
        bytes(4),  # siaddr
        bytes(4),  # giaddr
        mac.ljust(16, b"\0"),
        bytes(64),  # sname
        bytes(128),  # file
    )
    requested = bytes([1, 3, 6, 15, 51, 54])  # mask, router, DNS, domain, times, id
    options = (
        MAGIC_COOKIE
        + bytes([53, 1, DHCPDISCOVER])
        + bytes([55, len(requested)])
        + requested
        + bytes([255])
    )
    return (header + options).ljust(300, b"\0")


@dataclass(frozen=True)
class Offer:
    server: IPv4 | None
    address: IPv4
    lease_seconds: int | None


@dataclass(frozen=True)
class ProbeResult:
    interface: str
    waited: float
    offers: tuple[Offer, ...] = ()
    error: str = ""  # why the DISCOVER could not be sent

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.error or None,
            "offers": [
                {"server": str(o.server), "address": str(o.address)}
                for o in self.offers
            ],
        }

    def describe(self) -> str:
        if self.error:
            return f"DHCP probe on {self.interface} not sent: {self.error}"
        if not self.offers:
            return (
                f"no DHCP server answered on {self.interface} within {self.waited:g} s"
            )
        return "; ".join(
            f"DHCP server {o.server or 'unknown'} offered {o.address} on "
            f"{self.interface}"
            for o in self.offers
        )


def probe(host: Host, targets: Sequence[Interface], wait: float) -> list[ProbeResult]:
    """Send one DHCPDISCOVER on each target and collect OFFERs for ``wait`` seconds.

    All targets are probed at once, so naming several interfaces costs no more time.
    """
    return host.memo(
        "dhcp.probe:" + ",".join(t.name for t in targets),
        lambda: _probe(targets, wait),
    )


@dataclass
class _Pending:
    interface: str
    xid: int
    discover: bytes
    sender: socket.socket
    receiver: socket.socket
    sent: int = 1
    offers: list[Offer] = field(default_factory=list)
    first_offer: float | None = None

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()


#: Repeat the DISCOVER this often, as real clients do: dnsmasq (and other servers
#: that ping an address before offering it) stays silent on the first DISCOVER from
#: a new client and answers a repeat.
RESEND_SECONDS = 1.0
#: After the first OFFER, wait this much longer for others (a second DHCP server,
#: such as VirtualBox's host-only one, is a classic cause of wrong addresses).
_MORE_OFFERS = 0.3


def _probe(targets: Sequence[Interface], wait: float) -> list[ProbeResult]:
    results: dict[str, ProbeResult] = {}
    pending: list[_Pending] = []
    try:
        for target in targets:
            sent = _send_discover(target)
            if isinstance(sent, str):
                results[target.name] = ProbeResult(target.name, 0.0, error=sent)
            else:
                pending.append(sent)
        _collect(pending, wait)
    finally:
        for item in pending:
            item.close()
    for item in pending:
        results[item.interface] = ProbeResult(item.interface, wait, tuple(item.offers))
    return [results[t.name] for t in targets]


NEEDS_ROOT = "it needs root (a raw socket and UDP port 68)"


def _send_discover(target: Interface) -> _Pending | str:
    """Open the receiver, then send; the error text when either is impossible."""
    try:
        mac = bytes.fromhex(target.mac.replace(":", ""))
    except ValueError:
        mac = b""
    if len(mac) != 6:
        return f"{target.name} has no Ethernet address (kind {target.kind})"
    try:
        receiver = socket.socket(
            socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IP)
        )
    except PermissionError:
        return NEEDS_ROOT
    except OSError as exc:
        return f"cannot open a packet socket: {exc.strerror or exc}"
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    xid = secrets.randbits(32)
    discover = build_discover(xid, mac)
    try:
        receiver.bind((target.name, _ETH_P_IP))
        # SO_REUSEADDR: a running dhclient holds port 68 with it set too.
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sender.setsockopt(
            socket.SOL_SOCKET, socket.SO_BINDTODEVICE, target.name.encode()
        )
        sender.bind(("0.0.0.0", 68))
        sender.sendto(discover, ("255.255.255.255", 67))
    except OSError as exc:
        receiver.close()
        sender.close()
        if isinstance(exc, PermissionError):
            return NEEDS_ROOT
        return f"sending on {target.name} failed: {(exc.strerror or str(exc)).lower()}"
    return _Pending(target.name, xid, discover, sender, receiver)


def _collect(pending: list[_Pending], wait: float) -> None:
    start = time.monotonic()
    while True:
        now = time.monotonic()
        open_ = [
            p
            for p in pending
            if now - start < wait
            and (p.first_offer is None or now - p.first_offer < _MORE_OFFERS)
        ]
        if not open_:
            return
        for item in open_:
            if item.first_offer is None and now - start >= item.sent * RESEND_SECONDS:
                item.sent += 1
                with contextlib.suppress(OSError):
                    item.sender.sendto(item.discover, ("255.255.255.255", 67))
        deadline = min(
            [start + wait]
            + [p.first_offer + _MORE_OFFERS for p in open_ if p.first_offer]
            + [start + p.sent * RESEND_SECONDS for p in open_ if not p.first_offer]
        )
        readable, _, _ = select.select(
            [p.receiver for p in open_], [], [], max(0.0, deadline - now)
        )
        for item in open_:
            if item.receiver in readable:
                _read_offer(item)


def _read_offer(item: _Pending) -> None:
    with contextlib.suppress(BlockingIOError, InterruptedError):
        packet, address = item.receiver.recvfrom(65535, socket.MSG_DONTWAIT)
        if address[2] == _PACKET_OUTGOING:
            return
        message = _udp_dhcp(packet)
        if (
            message is None
            or message.op != BOOTREPLY
            or message.xid != item.xid
            or message.message_type != DHCPOFFER
        ):
            return
        offer = Offer(message.server, message.yiaddr, message.u32(51))
        if offer not in item.offers:  # the answer to a repeated DISCOVER
            item.offers.append(offer)
        if item.first_offer is None:
            item.first_offer = time.monotonic()


def _udp_dhcp(packet: bytes) -> DhcpMessage | None:
    """The DHCP message in an IPv4/UDP packet to port 68, else None."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_UDP:
        return None
    header = (packet[0] & 0x0F) * 4
    (dport,) = struct.unpack("!H", packet[header + 2 : header + 4])
    if dport != 68:
        return None
    return parse_dhcp_message(packet[header + 8 :])
