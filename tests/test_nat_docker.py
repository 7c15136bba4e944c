"""nat-docker on real test hosts: the session dockerd with a published port (healthy,
then with its DNAT rules flushed and restored), a scratch dockerd for the destructive
cases (nat chains deleted, ip_forward off, a DROP in FORWARD, a network overlapping
docker0), a dockerd with iptables disabled, and a user who may not read the rules.
Every change is made inside the test host's own namespace and undone afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from doctor_cli import run_doctor
from infra import Dockerd, DockerHost, Netns

pytestmark = pytest.mark.infra

PUBLISH = {"8000/tcp": 8000}


def nat_docker(host: DockerHost, **kw) -> dict:
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "nat-docker",
        "--docker-host",
        kw.pop("url", host.dockerd.url),
        netns=host.netns,
        **kw,
    )
    assert run.stderr == "", run.stderr
    return run.check("nat-docker")


class SavedRules:
    """iptables-save now, iptables-restore at teardown (inside the namespace)."""

    def __init__(self, netns: Netns) -> None:
        self.netns = netns
        self.text = netns.run(["iptables-save"], check=True).stdout

    def restore(self) -> None:
        self.netns.run(["iptables-restore"], input=self.text, check=True)


@pytest.fixture
def session_rules(clean_docker_host) -> Iterator[SavedRules]:
    saved = SavedRules(clean_docker_host.netns)
    try:
        yield saved
    finally:
        saved.restore()


@pytest.fixture(scope="module")
def scratch_host(docker_host) -> Iterator[DockerHost]:
    """A dockerd of this module's own, for changes the session host must not see.

    It asks for the session host first only so that missing infrastructure skips
    (or fails under CI=true) through conftest's policy before anything starts.
    """
    host = DockerHost.start(extra_hosts=["tcp://127.0.0.1:2375"])
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def scratch(scratch_host) -> Iterator[DockerHost]:
    """The scratch host, its rules and sysctl put back after each test."""
    saved = SavedRules(scratch_host.netns)
    try:
        yield scratch_host
    finally:
        saved.restore()
        scratch_host.netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        scratch_host.netns.run(["ip", "link", "del", "sdtov0"])


def test_published_port_with_its_rules_is_ok(clean_docker_host):
    host = clean_docker_host
    host.client.containers.run(
        host.image, ["sleep", "3600"], name="web", detach=True, ports=PUBLISH
    )
    check = nat_docker(host)
    assert check["status"] == "ok", check
    assert check["summary"] == (
        "Docker's NAT rules are in place (1 published port mapped)"
    )
    assert any("(nf_tables)" in d or "(legacy)" in d for d in check["details"])
    assert any(
        d.startswith("8000/tcp -> web 172.17.0.")
        and "--dport 8000 -j DNAT --to-destination 172.17.0." in d
        for d in check["details"]
    ), check["details"]
    assert check["data"]["published"][0]["dnat"] is True


def test_flushed_dnat_rules_name_the_port(clean_docker_host, session_rules):
    host = clean_docker_host
    host.client.containers.run(
        host.image, ["sleep", "3600"], name="web", detach=True, ports=PUBLISH
    )
    host.netns.run(["iptables", "-t", "nat", "-F", "DOCKER"], check=True)
    check = nat_docker(host)
    assert check["status"] == "failure"
    assert check["summary"] == (
        "published port 8000 unreachable: nat DOCKER chain has no DNAT rule for it "
        "(iptables was flushed?)"
    )
    assert any(
        d.endswith(":8000: no DNAT rule in the nat DOCKER chain")
        for d in check["details"]
    )
    assert "live-restore" in check["hints"][0]
    # A dockerd started by hand: reloaded by its pid, no systemctl, no sudo (root).
    assert f"and kill -HUP {host.dockerd.pid}, then" in check["hints"][0]
    assert "docker restart web" in check["hints"][1]
    assert "DOCKER-USER" in check["hints"][2]


def test_deleted_nat_chain_predicts_the_publish_error(scratch):
    scratch.netns.run(["iptables", "-t", "nat", "-F"], check=True)
    scratch.netns.run(["iptables", "-t", "nat", "-X"], check=True)
    check = nat_docker(scratch)
    assert check["status"] == "failure"
    assert check["summary"].startswith(
        "the nat DOCKER chain is missing (iptables was flushed?): Docker's next "
        "publish fails with 'iptables: No chain/target/match by that name'"
    )
    assert "and 1 more problem" in check["summary"]  # the MASQUERADE went too
    assert "containers on docker0 (172.17.0.0/16) cannot reach" in "".join(
        check["data"]["problems"]
    )


def test_ip_forward_off(scratch):
    scratch.netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    check = nat_docker(scratch)
    assert check["status"] == "failure"
    assert check["summary"] == (
        "IPv4 forwarding is off (net.ipv4.ip_forward = 0): published ports do not "
        "forward and containers cannot reach the network"
    )
    assert "net.ipv4.ip_forward = 0" in check["details"]
    assert any("sysctl -w net.ipv4.ip_forward=1" in h for h in check["hints"])


def test_drop_before_dockers_chains(scratch):
    scratch.netns.run(["iptables", "-I", "FORWARD", "1", "-j", "DROP"], check=True)
    check = nat_docker(scratch)
    assert check["status"] == "failure"
    assert check["summary"] == (
        "the FORWARD chain drops container traffic: '-A FORWARD -j DROP' comes "
        "before any jump to Docker's chains"
    )


def test_network_overlapping_docker0(scratch):
    # coreos-vagrant's private network 172.17.8.0/24 inside docker0's 172.17.0.0/16
    ns = scratch.netns
    for argv in (
        ["ip", "link", "add", "sdtov0", "type", "veth", "peer", "name", "sdtov1"],
        ["ip", "addr", "add", "172.17.8.101/24", "dev", "sdtov0"],
        ["ip", "link", "set", "sdtov0", "up"],
    ):
        ns.run(argv, check=True)
    check = nat_docker(scratch)
    assert check["status"] == "failure"
    assert check["summary"] == (
        "Docker bridge docker0 (172.17.0.0/16) overlaps 172.17.8.0/24 on sdtov0 "
        "(172.17.8.101/24): services in that network are unreachable from containers"
    )
    assert any('"bip": "10.200.0.1/24"' in h for h in check["hints"])


def test_daemon_found_through_its_tcp_endpoint(scratch):
    check = nat_docker(scratch, url="tcp://127.0.0.1:2375")
    assert check["status"] == "ok", check
    assert f"dockerd (pid {scratch.dockerd.pid})" in check["details"][0]


def test_iptables_disabled_is_skipped_with_the_reason(netns):
    with Dockerd.start(netns, extra_config={"iptables": False}) as dockerd:
        run = run_doctor(
            "check",
            "--json",
            "--only",
            "nat-docker",
            "--docker-host",
            dockerd.url,
            netns=netns,
        )
    check = run.check("nat-docker")
    assert check["status"] == "skipped"
    assert check["summary"] == (
        f'dockerd does not manage iptables ("iptables": false in {dockerd.root}/'
        "daemon.json): containers get no NAT from Docker, so there are no rules to "
        "check"
    )


def test_unprivileged_user_is_told_why(scratch, unprivileged_venv):
    check = nat_docker(
        scratch,
        url="tcp://127.0.0.1:2375",
        python=str(unprivileged_venv / "bin" / "python"),
        as_nobody=True,
    )
    assert check["status"] == "skipped"
    assert check["summary"] == "iptables rules not read: iptables-save needs root"
