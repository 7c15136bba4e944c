"""ports, on a real test host: a namespace with its own dockerd, real listeners and
real containers publishing ports. The doctor runs inside the namespace, as a user
would run it on that host."""

from __future__ import annotations

import pytest
from doctor_cli import run_doctor

pytestmark = pytest.mark.infra


def test_clean_host_is_healthy(clean_docker_host):
    host = clean_docker_host
    # The issue-2 pair; the checks added later have their own healthy-host tests.
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon,ports",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
    )
    assert run.code == 0, run.stdout + run.stderr
    assert run.check("ports")["status"] == "ok"
    assert run.check("ports")["summary"] == "ports 80, 6379, 8000 are free"
    assert run.check("docker-daemon")["status"] == "ok"
    assert run.doc["ok"] is True


def test_foreign_listeners_are_named(clean_docker_host, listeners):
    host = clean_docker_host
    redis = listeners.redis(host.netns, 6379)
    v6only = listeners.tcp(host.netns, "::", 8000, v6only=True)
    loopback = listeners.tcp(host.netns, "127.0.0.1", 80)
    run = run_doctor(
        "check", "--json", "--docker-host", host.dockerd.url, netns=host.netns
    )
    assert run.code == 1
    ports = run.check("ports")
    assert ports["status"] == "failure"
    assert (
        ports["summary"]
        == "ports 80, 6379, 8000 already in use (needed by Shipyard v1)"
    )
    details = "\n".join(ports["details"])
    assert f"redis-server (pid {redis.pid}, user root)" in details
    assert f"(pid {v6only.pid}, user root)" in details and "[::]:8000" in details
    assert f"(pid {loopback.pid}, user root)" in details and "127.0.0.1:80" in details
    holders = {p["port"]: p["holders"] for p in ports["data"]["ports"]}
    assert [h["pid"] for h in holders[6379]] == [redis.pid]
    assert [h["pid"] for h in holders[8000]] == [v6only.pid]
    assert [h["pid"] for h in holders[80]] == [loopback.pid]
    assert ports["hints"]


def test_container_publishing_a_port_is_named(clean_docker_host):
    host = clean_docker_host
    host.client.containers.run(
        host.image,
        ["sleep", "3600"],
        name="squatter",
        detach=True,
        ports={"8000/tcp": 8000},
    )
    run = run_doctor(
        "check", "--json", "--docker-host", host.dockerd.url, netns=host.netns
    )
    ports = run.check("ports")
    assert run.code == 1 and ports["status"] == "failure"
    assert ports["summary"].startswith("port 8000 already in use")
    (holder,) = next(p["holders"] for p in ports["data"]["ports"] if p["port"] == 8000)
    assert holder["kind"] == "container" and holder["name"] == "squatter"
    assert holder["shipyard"] is False
    assert any("published by container squatter (image " in d for d in ports["details"])


def test_previous_shipyard_deployment_is_a_warning(clean_docker_host):
    host = clean_docker_host
    image = host.client.images.get(host.image)
    for name, port in (
        ("shipyard_redis", 6379),
        ("shipyard_lb", 80),
        ("shipyard", 8000),
    ):
        repo = f"shipyard/{name.removeprefix('shipyard_') or 'shipyard'}"
        image.tag(repo, "latest")
        host.client.containers.run(
            f"{repo}:latest",
            ["sleep", "3600"],
            name=name,
            detach=True,
            ports={f"{port}/tcp": port},
        )
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon,ports",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
    )
    ports = run.check("ports")
    assert ports["status"] == "warning", ports
    assert ports["summary"] == (
        "Shipyard v1 is already deployed: its containers hold 80, 6379, 8000"
    )
    assert run.code == 0  # a warning does not fail the run
    assert "a previous Shipyard deployment" in "\n".join(ports["details"])


def test_moved_port_is_checked_instead(clean_docker_host, listeners, tmp_path):
    host = clean_docker_host
    listeners.tcp(host.netns, "0.0.0.0", 8000)
    config = tmp_path / "config.toml"
    config.write_text("[stack.ports]\nshipyard = 8001\n")
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "ports",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
    )
    ports = run.check("ports")
    assert ports["status"] == "ok", ports
    assert "8001/tcp (shipyard, moved from 8000): free" in ports["details"]


def test_unprivileged_user_gets_no_false_positive(
    clean_docker_host, listeners, unprivileged_venv
):
    # kubernetes/kubernetes#34893: a non-root user cannot bind :80, which is not a
    # conflict. A root-owned listener is still found, its owner said to be hidden.
    host = clean_docker_host
    listeners.redis(host.netns, 6379)
    python = str(unprivileged_venv / "bin" / "python")
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "ports",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        python=python,
        as_nobody=True,
    )
    assert run.doc["host"]["uid"] == 65534, run.stderr
    ports = run.check("ports")
    assert ports["status"] == "failure"
    assert ports["summary"].startswith("port 6379 already in use")
    by_port = {p["port"]: p for p in ports["data"]["ports"]}
    assert (
        by_port[80]["free"] is True and by_port[80]["bind"]["ipv4"] == "not permitted"
    )
    (holder,) = by_port[6379]["holders"]
    assert holder == {
        "kind": "unknown",
        "uid": 0,
        "user": "root",
        "address": "0.0.0.0:6379",
    }
    assert any("its owner is not visible (run as root" in d for d in ports["details"])


def test_hint_names_the_config_key_of_a_multi_port_service(netns, listeners, tmp_path):
    # v3's discovery (etcd) publishes 4001 and 7001: its [stack.ports] keys are
    # "discovery/4001" and "discovery/7001", which TOML needs quoted.
    listeners.tcp(netns, "0.0.0.0", 7001)
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "ports",
        "--stack",
        "v3",
        "--docker-host",
        f"unix://{tmp_path}/no-docker.sock",
        netns=netns,
    )
    ports = run.check("ports")
    assert ports["summary"].startswith("port 7001 already in use")
    (hint,) = [h for h in ports["hints"] if "[stack.ports]" in h]
    assert '[stack.ports] "discovery/7001" = 7002 (free now)' in hint


def test_one_owner_on_loopback_v4_and_v6_is_named_with_both(netns, tmp_path):
    """Issue 8, item 7: a process listening on 127.0.0.1:8000 and [::1]:8000 is
    one holder naming both addresses."""
    import sys

    from infra import stop_process, wait_listening

    script = (
        "import socket, time\n"
        "a = socket.socket(); a.bind(('127.0.0.1', 8000)); a.listen()\n"
        "b = socket.socket(socket.AF_INET6); b.bind(('::1', 8000)); b.listen()\n"
        "time.sleep(3600)\n"
    )
    proc = netns.spawn([sys.executable, "-c", script])
    try:
        wait_listening(proc, 8000, "::1")
        run = run_doctor(
            "check",
            "--json",
            "--only",
            "ports",
            "--docker-host",
            f"unix://{tmp_path}/no-docker.sock",
            netns=netns,
        )
        ports = run.check("ports")
        lines = [d for d in ports["details"] if d.startswith("8000/tcp")]
        assert len(lines) == 1, lines
        assert lines[0].endswith("listens on 127.0.0.1:8000, [::1]:8000"), lines
        (entry,) = [p for p in ports["data"]["ports"] if p["port"] == 8000]
        (holder,) = entry["holders"]
        assert holder["addresses"] == ["127.0.0.1:8000", "[::1]:8000"]
    finally:
        stop_process(proc)
