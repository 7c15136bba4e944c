"""Listening TCP sockets, who owns them, and whether a port can be bound.

Reads the kernel's tables (/proc/net/tcp, /proc/net/tcp6) directly: they exist on every
Linux host, need no root, and reflect the network namespace the doctor runs in. Owners
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
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

TCP_LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN = 10


@dataclass(frozen=True)
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


def listening_tcp(proc: Path = Path("/proc")) -> list[Listener]:
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
