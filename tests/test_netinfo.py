"""Interface and route facts: the parser on a recorded routing table, and the live
facts read inside a real namespace (a veth, a docker0-like bridge with a port)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from shipyard_doctor.host.netinfo import parse_routes

DATA = Path(__file__).parent / "data" / "proc"


def test_parse_recorded_routes():
    # Recorded in a namespace: 198.51.100.2/24 on vA, default via 198.51.100.1
    # (metric 100), 203.0.113.0/24 via 198.51.100.9.
    routes = parse_routes((DATA / "net-route.txt").read_text())
    assert [(str(r.destination), str(r.gateway), r.metric) for r in routes] == [
        ("0.0.0.0/0", "198.51.100.1", 100),
        ("198.51.100.0/24", "None", 0),
        ("203.0.113.0/24", "198.51.100.9", 0),
    ]
    assert routes[0].is_default and all(r.interface == "vA" for r in routes)


PROBE = """
import json
from shipyard_doctor.config import Config
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.netinfo import (
    _interfaces_from_getifaddrs, interfaces, routes
)
host = Host(Config())
print(json.dumps({
    "interfaces": {i.name: {"kind": i.kind, "up": i.up, "carrier": i.carrier,
                            "master": i.master, "docker": i.is_docker,
                            "ipv4": [str(a) for a in i.ipv4],
                            "routable": [str(a) for a in i.routable_ipv4]}
                   for i in interfaces(host)},
    "addresses": {i.name: sorted(map(str, i.ipv4 + i.ipv6)) for i in interfaces(host)},
    "getifaddrs": {
        i.name: sorted(map(str, i.ipv4 + i.ipv6)) for i in _interfaces_from_getifaddrs()
    },
    "routes": [[r.interface, str(r.destination), str(r.gateway)] for r in routes(host)],
}))
"""


@pytest.mark.infra
def test_live_interfaces_inside_a_namespace(netns, require_infra):
    require_infra("ip")
    peer = type(netns).create()
    try:
        for argv in (
            [
                "ip",
                "link",
                "add",
                "up0",
                "type",
                "veth",
                "peer",
                "name",
                "up1",
                "netns",
                peer.name,
            ],
            ["ip", "addr", "add", "198.51.100.2/24", "dev", "up0"],
            ["ip", "addr", "add", "198.51.100.3/25", "dev", "up0"],
            ["ip", "-6", "addr", "add", "2001:db8::2/64", "dev", "up0", "nodad"],
            ["ip", "link", "set", "up0", "up"],
            ["ip", "link", "add", "down0", "type", "veth", "peer", "name", "down1"],
            ["ip", "link", "add", "docker0", "type", "bridge"],
            ["ip", "link", "set", "down1", "master", "docker0"],
            ["ip", "addr", "add", "169.254.7.7/16", "dev", "down0"],
        ):
            assert netns.run(argv).returncode == 0, argv
        assert peer.run(["ip", "link", "set", "up1", "up"]).returncode == 0
        done = netns.run([sys.executable, "-c", PROBE])
        assert done.returncode == 0, done.stderr
        facts = json.loads(done.stdout)
    finally:
        peer.delete()
    found = facts["interfaces"]
    assert set(found) == {"lo", "up0", "down0", "down1", "docker0"}
    assert found["lo"]["kind"] == "loopback"
    assert found["up0"] == {
        "kind": "veth",
        "up": True,
        "carrier": True,
        "master": None,
        "docker": False,
        "ipv4": ["198.51.100.2/24", "198.51.100.3/25"],
        "routable": ["198.51.100.2/24", "198.51.100.3/25"],
    }
    assert "2001:db8::2/64" in facts["addresses"]["up0"]
    # `ip -json addr` and getifaddrs (psutil, where `ip` cannot run) agree.
    assert facts["addresses"] == facts["getifaddrs"]
    assert found["down0"]["up"] is False and found["down0"]["carrier"] is False
    assert found["down0"]["ipv4"] == ["169.254.7.7/16"]
    assert found["docker0"]["kind"] == "bridge" and found["docker0"]["docker"]
    assert found["down1"]["master"] == "docker0" and found["down1"]["docker"]
    assert ["up0", "198.51.100.0/24", "None"] in facts["routes"]
    # A 169.254/16 address is what a failed DHCP leaves behind: not routable.
    assert found["down0"]["routable"] == []
    assert found["up0"]["routable"] == ["198.51.100.2/24", "198.51.100.3/25"]
