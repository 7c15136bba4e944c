"""DHCP on the wire: the BOOTP/DHCP message format (RFC 2131) and the DISCOVER probe.

The probe is the only code in shipyard-doctor that sends anything on a network
interface, and it runs only for interfaces the user names with --probe-dhcp. It sends
DHCPDISCOVERs and listens for OFFERs; it never sends a REQUEST, so no lease is taken
and no address changes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.records import field, mutable_record, record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.netinfo import Interface

IPv4 = ipaddress.IPv4Address

MAGIC_COOKIE = b"\x63\x82\x53\x63"  # RFC 2131 section 3
BOOTREQUEST, BOOTREPLY = 1, 2
DHCPDISCOVER, DHCPOFFER = 1, 2
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4  # linux/if_packet.h


@record
class DhcpMessage:
    """A BOOTP/DHCP message (RFC 2131): the fixed fields the probe uses, and its
    options by code."""

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


@record
class Offer:
    """A DHCPOFFER: the server that sent it, the address offered and for how long."""

    server: IPv4 | None
    address: IPv4
    lease_seconds: int | None


@record
class ProbeResult:
    """What the DISCOVER probe got on one interface: offers, or why it was not sent."""

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
    return _probe_once(host, tuple(targets), wait)


@host_fact
def _probe_once(
    host: Host, targets: tuple[Interface, ...], wait: float
) -> list[ProbeResult]:
    return _probe(targets, wait)


@mutable_record
class _Pending:
    """A probe in flight on one interface: its sockets, its DISCOVER and how often it
    was sent, and the offers received so far."""

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
    import secrets  # hashlib and friends: only for a probe, never on a plain check

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
