"""docker-tcp on real test hosts: namespace dockerds with only a unix socket, with
tcp://127.0.0.1:4243, and with tcp://0.0.0.0:4243 without TLS; plus the configurations
that break at the next start (recorded units from tests/data/systemd with a real
daemon.json). The doctor runs inside the namespace, as it would on that host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from doctor_cli import run_doctor
from infra import Dockerd
from shipyard_doctor.host.daemonconf import parse_api_address

DATA = Path(__file__).parent / "data" / "systemd"
TCP = "tcp://127.0.0.1:4243"


def write_config(tmp_path: Path, systemd_dirs: list[Path], **docker: str) -> Path:
    """A doctor config for [docker] tcp 127.0.0.1:4243 and these unit dirs (an empty
    dir keeps this machine's own docker.service out of the picture)."""
    empty = tmp_path / "no-units"
    empty.mkdir(exist_ok=True)
    dirs = [str(d) for d in systemd_dirs] or [str(empty)]
    lines = ["[docker]", 'tcp = "127.0.0.1:4243"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in docker.items()]
    # Empty run and init dirs: no service manager is seen, whatever PID 1 is here.
    lines += ["[host]", f"systemd_dirs = {json.dumps(dirs)}"]
    lines += [f'run_dir = "{empty}"', f'init_dir = "{empty}"']
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def doctor(netns, config: Path, docker_host: str, only: str = "docker-tcp"):
    return run_doctor(
        "check",
        "--json",
        "--only",
        only,
        "--docker-host",
        docker_host,
        netns=netns,
        config=config,
    )


def test_unix_only_daemon_fails_with_the_route_that_fits(clean_docker_host, tmp_path):
    host = clean_docker_host
    run = doctor(host.netns, write_config(tmp_path, []), host.dockerd.url)
    check = run.check("docker-tcp")
    assert check["status"] == "failure", check
    assert check["summary"] == (
        f"Docker API does not answer on {TCP} (the daemon listens only on "
        f"{host.dockerd.url})"
    )
    details = "\n".join(check["details"])
    assert f"running dockerd (pid {host.dockerd.pid}): no -H flags" in details
    assert "Connection refused" in check["details"][0]
    # No -H on its command line: daemon.json "hosts" is the route, with its content.
    route = check["data"]["routes"][0]
    assert route["kind"] == "daemon.json" and route["fits"] is True
    assert route["path"] == str(host.dockerd.root / "daemon.json")
    content = json.loads(route["content"])
    assert content["hosts"] == [host.dockerd.url, TCP]
    assert content["data-root"] == host.dockerd.config["data-root"]
    assert check["hints"][0].startswith("daemon.json route (fits: dockerd has no -H")
    assert f"| sudo tee {route['path']}" in check["hints"][0]
    assert "shipyard-agent v0.3.0+" in check["hints"][-1]


def test_daemon_on_loopback_tcp_is_ok(netns, tmp_path):
    daemon = Dockerd.start(netns, extra_hosts=(TCP,))
    try:
        run = doctor(netns, write_config(tmp_path, []), daemon.url)
        check = run.check("docker-tcp")
        assert check["status"] == "ok", check
        version = daemon.client().version()["Version"]
        assert check["summary"] == f"Docker {version} answers on {TCP}"
        assert any(
            d.startswith(f"listening: dockerd (pid {daemon.pid}")
            and "127.0.0.1:4243" in d
            for d in check["details"]
        ), check["details"]
        assert check["data"]["exposures"] == []
    finally:
        daemon.stop()


def test_daemon_on_every_address_without_tls_is_a_failure(netns, tmp_path):
    # "tls": false spares the 15 s warning pause dockerd >= 20.10 adds otherwise.
    daemon = Dockerd.start(
        netns, extra_hosts=("tcp://0.0.0.0:4243",), extra_config={"tls": False}
    )
    try:
        run = doctor(netns, write_config(tmp_path, []), daemon.url)
        check = run.check("docker-tcp")
        assert check["status"] == "failure"
        assert check["summary"] == (
            "the Docker API is open on tcp://0.0.0.0:4243 without TLS verification: "
            "anyone who can reach it is root on this host"
        )
        exposed = check["data"]["exposures"]
        assert exposed[0] == (
            f"tcp://0.0.0.0:4243 (from {daemon.root}/daemon.json via running dockerd "
            f"(pid {daemon.pid}))"
        )
        assert "--tlsverify" in check["hints"][0]
        assert run.code == 1
    finally:
        daemon.stop()


# The -H/"hosts" conflict predicted before a restart, under a real systemd:
# test_systemd_machine.py::test_conflict_is_predicted_and_refusals_change_nothing.


def test_coreos_docker_tcp_socket_on_every_address(netns, tmp_path):
    # The 2014 CoreOS docs' docker-tcp.socket (ListenStream=4243), enabled.
    dirs = [DATA / "coreos/etc/systemd/system", DATA / "coreos/usr/lib/systemd/system"]
    config = write_config(tmp_path, dirs, daemon_json=str(tmp_path / "none.json"))
    run = doctor(netns, config, f"unix://{tmp_path}/docker.sock")
    check = run.check("docker-tcp")
    assert check["status"] == "failure"
    assert check["summary"].startswith("the Docker API is open on tcp://0.0.0.0:4243")
    assert check["data"]["exposures"] == [
        "tcp://0.0.0.0:4243 (docker-tcp.socket ListenStream=4243 — every address)"
    ]
    details = "\n".join(check["details"])
    assert "ListenStream=4243 (enabled)" in details
    assert "$DOCKER_OPTS is not set, so it adds nothing" in details


@pytest.mark.parametrize(
    ("text", "url", "loopback"),
    [
        ("tcp://127.0.0.1:4243", "tcp://127.0.0.1:4243", True),
        ("tcp://:4243", "tcp://localhost:4243", True),  # dockerd's DefaultHTTPHost
        ("0.0.0.0:2375", "tcp://0.0.0.0:2375", False),
        ("tcp://[::]:2375", "tcp://[::]:2375", False),
        ("tcp://192.0.2.10", "tcp://192.0.2.10:2375", False),
        ("fd://", "fd://", True),
    ],
)
def test_api_addresses_as_dockerd_reads_them(text, url, loopback):
    address = parse_api_address(text)
    assert (address.url, address.loopback) == (url, loopback)
