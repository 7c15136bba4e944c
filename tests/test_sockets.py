"""The kernel socket-table parser, on tables recorded from a real namespace."""

from __future__ import annotations

import socket
from pathlib import Path

from shipyard_doctor.host.sockets import Bind, parse_proc_net_tcp, try_bind

DATA = Path(__file__).parent / "data" / "proc"


def test_parses_only_listening_sockets_ipv4():
    # Recorded with listeners on 127.0.0.1:80 and 0.0.0.0:6379 plus one established
    # connection to port 80, which must not count as a listener.
    listeners = parse_proc_net_tcp((DATA / "net-tcp.txt").read_text(), socket.AF_INET)
    assert {(x.address, x.port) for x in listeners} == {
        ("0.0.0.0", 6379),
        ("127.0.0.1", 80),
    }
    assert {x.inode for x in listeners} == {10339, 10337}
    assert all(x.uid == 0 for x in listeners)


def test_parses_ipv6_listeners():
    listeners = parse_proc_net_tcp((DATA / "net-tcp6.txt").read_text(), socket.AF_INET6)
    assert {(x.address, x.port) for x in listeners} == {("::", 8000), ("::1", 4243)}
    assert {x.endpoint for x in listeners} == {"[::]:8000", "[::1]:4243"}


def test_bind_probe_sees_a_loopback_listener():
    # A specific-address listener blocks the wildcard bind Docker would make.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert try_bind(socket.AF_INET, port) is Bind.IN_USE
    assert try_bind(socket.AF_INET, port) is Bind.FREE
