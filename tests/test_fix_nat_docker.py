"""The nat-docker fix for real, inside a test host's namespace: a dockerd with
live-restore and a container publishing 8000, its nat DOCKER chain flushed; the fix
restarts that dockerd through `[docker] restart_command` and Docker writes its DNAT
rule again (iptables-save in the namespace shows it) while the container keeps
running. A "restart" that restarts nothing is rolled back; ip_forward=0 is repaired
with sysctl and undone; an overlapping bridge gets no automatic fix."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest
from doctor_cli import run_doctor
from infra import Netns, build_busybox_image
from test_fix_docker_tcp import restartable, write_config  # noqa: F401 (fixture)

pytestmark = pytest.mark.infra

DNAT = "--dport 8000 -j DNAT --to-destination 172.17.0."


def dnat_rules(netns: Netns) -> list[str]:
    saved = netns.run(["iptables-save", "-t", "nat"], check=True).stdout
    return [line for line in saved.splitlines() if DNAT in line]


def fix_nat(netns: Netns, config: Path, url: str):
    run = run_doctor(
        "check",
        "--fix",
        "--yes",
        "--json",
        "--only",
        "nat-docker",
        "--docker-host",
        url,
        netns=netns,
        config=config,
    )
    assert run.stderr == "", run.stderr
    return run


def test_restart_brings_back_the_dnat_rule_and_keeps_the_container(
    restartable,  # noqa: F811
    netns,
    tmp_path,
):
    host = restartable(extra_config={"live-restore": True})
    client = docker.DockerClient(base_url=host.daemon.url, timeout=30)
    try:
        web = client.containers.run(
            build_busybox_image(client),
            ["sleep", "3600"],
            name="web",
            detach=True,
            ports={"8000/tcp": 8000},
        )
        web.reload()
        started = (web.attrs["State"]["Pid"], web.attrs["State"]["StartedAt"])
    finally:
        client.close()
    assert len(dnat_rules(netns)) == 1
    netns.run(["iptables", "-t", "nat", "-F", "DOCKER"], check=True)
    assert dnat_rules(netns) == []
    url = host.daemon.url

    # A restart_command that restarts nothing: the repaired thing itself (the DNAT
    # rule of port 8000) is verified, it is not back: the fix fails, rolled back.
    noop = write_config(tmp_path, docker={"restart_command": "true"})
    run = fix_nat(netns, noop, url)
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "failed", fix
    assert fix["message"] == (
        "not repaired: published port 8000/tcp -> web has no DNAT rule; rolled back"
    ), fix
    assert fix["rollback"] == [
        "not reversible: sh -c true (Docker recreates its chains and rules at start "
        "([docker] restart_command: true))"
    ]
    assert dnat_rules(netns) == []

    config = write_config(tmp_path, docker={"restart_command": host.restart_command()})
    run = fix_nat(netns, config, url)
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["recheck"]["status"] == "ok"
    assert fix["recheck"]["summary"] == (
        "Docker's NAT rules are in place (1 published port mapped)"
    )
    plan = fix["plan"]
    assert plan["summary"] == "restart Docker so it recreates its iptables rules"
    assert [s.split(" ", 3)[:3] for s in plan["steps"]] == [
        ["run:", "sh", "-c"],
        ["verify:", "1", "running"],
    ]
    assert plan["risk"].startswith(
        f"restarts dockerd; live-restore is on ({host.daemon_json}), so running "
        "containers keep running (1 is running)"
    )
    assert run.code == 0
    # The real effect: Docker's own DNAT rule is back, from a new dockerd, and the
    # container was not restarted (live-restore).
    assert len(dnat_rules(netns)) == 1
    assert host.current_pid() != host.daemon.pid
    client = docker.DockerClient(base_url=url, timeout=30)
    try:
        web = client.containers.get("web")
        assert web.status == "running"
        assert (web.attrs["State"]["Pid"], web.attrs["State"]["StartedAt"]) == started
    finally:
        client.close()

    again = fix_nat(netns, config, url)
    assert again.check("nat-docker")["status"] == "ok"
    assert again.doc["fixes"] == []


def test_ip_forward_turned_on_and_undone_overlap_left_to_the_user(
    restartable,  # noqa: F811
    netns,
    tmp_path,
):
    host = restartable()
    config = write_config(tmp_path, docker={"restart_command": host.restart_command()})
    forward = Path("/proc/sys/net/ipv4/ip_forward")

    def forwarding() -> str:
        return netns.run(["cat", str(forward)], check=True).stdout.strip()

    netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    run = fix_nat(netns, config, host.daemon.url)
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["plan"]["summary"] == "turn IPv4 forwarding on"
    assert fix["plan"]["steps"] == [
        "run: sysctl -w net.ipv4.ip_forward=1  (published ports and container "
        "traffic need IPv4 forwarding)"
    ]
    assert fix["plan"]["risk"] == ""  # no restart
    assert fix["recheck"]["status"] == "ok"
    assert forwarding() == "1"
    assert host.current_pid() == host.daemon.pid

    undo = run_doctor("undo", netns=netns, config=config)
    assert "  ran: sysctl -w net.ipv4.ip_forward=0\n" in undo.stdout, undo.stdout
    assert forwarding() == "0"
    netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)

    # coreos-vagrant's 172.17.8.0/24 inside docker0's 172.17.0.0/16: by hand only.
    for argv in (
        ["ip", "link", "add", "sdtov0", "type", "veth", "peer", "name", "sdtov1"],
        ["ip", "addr", "add", "172.17.8.101/24", "dev", "sdtov0"],
        ["ip", "link", "set", "sdtov0", "up"],
    ):
        netns.run(argv, check=True)
    run = fix_nat(netns, config, host.daemon.url)
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "nothing-to-do", fix
    assert fix["message"].startswith(
        "no automatic fix: the Docker bridge overlaps another network"
    )
    assert any('"bip": "10.200.0.1/24"' in line for line in fix["plan"]["manual"])
    assert json.loads(host.daemon_json.read_text()).get("bip") is None
