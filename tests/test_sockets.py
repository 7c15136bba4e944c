"""The kernel socket tables: the parser on tables recorded from a real namespace, and
netlink (sock_diag) against the live tables of a test namespace."""

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


# Runs inside the test namespace: both ways of listing, as JSON.
_BOTH_WAYS = """
import json, socket
from shipyard_doctor.host import sockets
from pathlib import Path
def rows(found):
    return sorted([int(x.family), x.address, x.port, x.uid, x.inode] for x in found)
files = []
for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
    files += sockets.parse_proc_net_tcp(Path("/proc/net", name).read_text(), family)
print(json.dumps({
    "netlink": rows(sockets.listening_tcp_netlink()),
    "files": rows(files),
    "default": rows(sockets.listening_tcp()),
}))
"""


def test_netlink_lists_the_same_listeners_as_proc_net_tcp(netns, listeners):
    # Real listeners on every kind of address, and an established connection to
    # one of them (its two ends must not count): sock_diag and the /proc tables
    # agree, socket for socket (uid and inode included).
    import json
    import subprocess
    import sys

    listeners.tcp(netns, "127.0.0.1", 8000)
    listeners.tcp(netns, "0.0.0.0", 6379)
    listeners.tcp(netns, "::1", 4243)
    listeners.tcp(netns, "::", 2375, v6only=False)
    client = (
        "import socket, sys; s = socket.create_connection(('127.0.0.1', 8000)); "
        "print('up', flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        netns.nsenter_argv([sys.executable, "-c", client]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as connected:
        try:
            assert connected.stdout is not None
            assert connected.stdout.readline().strip() == "up"
            done = subprocess.run(
                netns.nsenter_argv([sys.executable, "-c", _BOTH_WAYS]),
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            connected.kill()
    found = json.loads(done.stdout)
    assert found["netlink"] == found["files"] == found["default"]
    assert {(row[1], row[2]) for row in found["netlink"]} == {
        ("127.0.0.1", 8000),
        ("0.0.0.0", 6379),
        ("::1", 4243),
        ("::", 2375),
    }
