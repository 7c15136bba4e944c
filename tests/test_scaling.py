"""A busy host: hundreds of interfaces and thousands of listening sockets in a real
network namespace. What used to time out (docker-tcp looked up the owner process of
every listener, one by one) or grow with the square of the interfaces (one
getifaddrs() per interface) must finish well within the check timeout, and still
describe the host exactly. Timings themselves are benchmarks (benchmarks/), not
asserted here beyond the timeout the doctor itself enforces."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from doctor_cli import run_doctor

pytestmark = pytest.mark.infra

PROBE = """
import json
from shipyard_doctor.config import Config
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.netinfo import interfaces
print(json.dumps({i.name: {"kind": i.kind, "up": i.up,
    "ipv4": [str(a) for a in i.ipv4], "ipv6": [str(a) for a in i.ipv6]}
    for i in interfaces(Host(Config(), {}))}))
"""

LISTENERS = """
import resource, socket, sys, time
count, first = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 100, count + 100))
held = []
for port in range(first, first + count):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    held.append(s)
print("ready", flush=True)
time.sleep(600)
"""


def test_interfaces_of_a_namespace_with_many_veths(netns, require_infra):
    require_infra("ip")
    pairs = 60
    commands = [f"link add a{n} type veth peer name b{n}" for n in range(pairs)]
    commands += [
        "addr add 203.0.113.2/24 dev a0",
        "addr add 2001:db8::2/64 dev a0 nodad",
        "link set a0 up",
        "link set b0 up",
    ]
    batch = netns.run(["ip", "-batch", "-"], input="\n".join(commands) + "\n")
    assert batch.returncode == 0, batch.stderr
    done = netns.run([sys.executable, "-c", PROBE])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    listed = netns.run(["ip", "-json", "link", "show"])
    names = {link["ifname"] for link in json.loads(listed.stdout)}
    assert set(found) == names and len(names) == 2 * pairs + 1
    assert found["lo"]["ipv4"] == ["127.0.0.1/8"] and "::1/128" in found["lo"]["ipv6"]
    assert found["a0"]["kind"] == "veth" and found["a0"]["up"] is True
    assert found["a0"]["ipv4"] == ["203.0.113.2/24"]
    assert "2001:db8::2/64" in found["a0"]["ipv6"]
    assert all(a.endswith("/64") for a in found["a0"]["ipv6"]), found["a0"]
    assert found["a7"] == {"kind": "veth", "up": False, "ipv4": [], "ipv6": []}


def test_15000_listeners_do_not_time_out_docker_tcp_or_ports(netns, require_infra):
    require_infra("nsenter")
    holder = subprocess.Popen(
        netns.nsenter_argv([sys.executable, "-c", LISTENERS, "15000", "10000"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        run = run_doctor(
            "check",
            "--json",
            "--only",
            "docker-tcp,ports",
            "--docker-host",
            "unix:///nonexistent/shipyard-doctor.sock",
            netns=netns,
        )
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    statuses = {c["id"]: (c["status"], c["summary"]) for c in run.doc["checks"]}
    assert statuses["ports"] == ("ok", "ports 80, 6379, 8000 are free"), statuses
    # docker-tcp decides (no API at 127.0.0.1:4243 here): not "timed out after 5 s".
    assert statuses["docker-tcp"][0] == "failure", statuses
