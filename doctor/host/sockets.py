"""Listening TCP sockets, who owns them, and whether a port can be bound.

Asks the kernel for the listening sockets over netlink (sock_diag, what ``ss -lt``
does), else reads its tables (/proc/net/tcp, /proc/net/tcp6); both need no root and
reflect the network namespace the doctor runs in. Netlink first, because reading
/proc/net/tcp walks the kernel's whole connection hash table (~4 ms per file here
even when it lists nothing; seconds at 15,000 listeners), while sock_diag with a
LISTEN filter walks only the listening sockets. Owners
are found by matching socket inodes in /proc/<pid>/fd; without root only the caller's
own processes are visible, and an owner that cannot be seen is reported as unknown,
with the socket's uid, never guessed.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from shipyard_doctor.records import record

TCP_LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN = 10


@record
class Listener:
    """A listening TCP socket from the kernel's table: address, port, uid and inode."""

    family: int  # socket.AF_INET or socket.AF_INET6
    address: str
    port: int
    uid: int
    inode: int

    @property
    def endpoint(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else (f"{self.address}:{self.port}")
        )


def _ipv4(hexaddr: str) -> str:
    # The kernel prints the address as one 32-bit word in host byte order.
    return socket.inet_ntop(socket.AF_INET, struct.pack("=I", int(hexaddr, 16)))


def _ipv6(hexaddr: str) -> str:
    words = (int(hexaddr[i : i + 8], 16) for i in range(0, 32, 8))
    return socket.inet_ntop(socket.AF_INET6, struct.pack("=4I", *words))


def parse_proc_net_tcp(text: str, family: int) -> list[Listener]:
    """Listening sockets from the text of /proc/net/tcp or /proc/net/tcp6."""
    convert = _ipv4 if family == socket.AF_INET else _ipv6
    seen: dict[str, str] = {}  # thousands of listeners share a handful of addresses
    listeners = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        hexaddr, _, port = fields[1].partition(":")
        address = seen.get(hexaddr)
        if address is None:
            address = seen[hexaddr] = convert(hexaddr)
        listeners.append(
            Listener(family, address, int(port, 16), int(fields[7]), int(fields[9]))
        )
    return listeners


# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQUEST = struct.Struct("=BBBxI48x")  # inet_diag_req_v2; its sockid all zero
# inet_diag_msg: family, state, timer, retrans, sockid (sport, dport: big-endian;
# src, dst; if; cookie), expires, rqueue, wqueue, uid, inode
_DIAG_MSG = struct.Struct("=BBBBHH16s16sI8sIIIII")
_LISTEN_STATE = 10  # TCP_LISTEN


def listening_tcp_netlink(timeout: float = 2.0) -> list[Listener]:
    """Listening TCP sockets of this network namespace, from sock_diag; OSError
    where netlink is not allowed (some sandboxes' seccomp filters)."""
    found: list[Listener] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as s:
        s.settimeout(timeout)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            request = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << _LISTEN_STATE)
            header = _NLMSGHDR.pack(
                _NLMSGHDR.size + len(request),
                _SOCK_DIAG_BY_FAMILY,
                _NLM_F_REQUEST | _NLM_F_DUMP,
                seq,
                0,
            )
            s.sendall(header + request)
            found.extend(_diag_answers(s, family, seq))
    return found


def _diag_answers(s: socket.socket, family: int, seq: int) -> Iterable[Listener]:
    size = 4 if family == socket.AF_INET else 16
    while True:
        data = s.recv(1 << 16)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _, got_seq, _ = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                raise OSError(errno.EPROTO, "malformed netlink message")
            body = offset + _NLMSGHDR.size
            offset += (length + 3) & ~3  # NLMSG_ALIGN
            if got_seq != seq:
                continue
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, body)
                if code:  # 0 would be an acknowledgement, which a dump never asks
                    raise OSError(-code, os.strerror(-code))
                continue
            if length - _NLMSGHDR.size < _DIAG_MSG.size:
                continue
            fields = _DIAG_MSG.unpack_from(data, body)
            if fields[1] != _LISTEN_STATE:
                continue
            address = socket.inet_ntop(family, fields[6][:size])
            port = socket.ntohs(fields[4])
            yield Listener(family, address, port, fields[13], fields[14])


def listening_tcp(proc: Path = Path("/proc")) -> list[Listener]:
    if proc == Path("/proc"):  # this host's own kernel: ask it over netlink
        try:
            return listening_tcp_netlink()
        except OSError:
            pass  # not allowed here: the tables in /proc say the same, slower
    found: list[Listener] = []
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            text = (proc / "net" / name).read_text()
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        found.extend(parse_proc_net_tcp(text, family))
    return found


def socket_owners(inodes: Iterable[int], proc: Path = Path("/proc")) -> dict[int, int]:
    """Map socket inode -> pid of a process holding it, for the inodes asked about."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, int] = {}
    if not wanted:
        return owners
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        # Links read relative to the open fd dir: a process holding 15,000 sockets
        # costs 15,000 readlink calls, not 15,000 path objects and lookups too.
        try:
            fd_dir = os.open(f"{proc}/{name}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # not ours to read (no root), or the process just exited
            continue
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            fds = []
        try:
            for fd in fds:
                try:
                    target = os.readlink(fd, dir_fd=fd_dir)
                except OSError:
                    continue
                inode = wanted.get(target)
                if inode is not None and inode not in owners:
                    owners[inode] = int(name)
        finally:
            os.close(fd_dir)
        if len(owners) == len(wanted):
            break
    return owners


class Bind(StrEnum):
    FREE = "free"
    IN_USE = "in use"
    DENIED = "not permitted"  # a privileged port and we are not root
    UNAVAILABLE = "unavailable"  # e.g. IPv6 disabled on this host


def try_bind(family: int, port: int) -> Bind:
    """Bind the wildcard address for an instant, as Docker's port publisher would.

    SO_REUSEADDR is set as Go's net.Listen (docker-proxy) sets it, so sockets lingering
    in TIME_WAIT are not reported as conflicts; a listening socket on any address of
    that port still is. For IPv6 the socket is v6-only so each family is tested alone.
    """
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return Bind.UNAVAILABLE
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        except PermissionError:
            return Bind.DENIED
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Bind.IN_USE
            return Bind.UNAVAILABLE
    return Bind.FREE
