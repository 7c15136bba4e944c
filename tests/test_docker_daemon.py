"""docker-daemon on real endpoints: a namespace dockerd, a socket that never answers,
a missing socket, a stale one, a socket the user may not open, and no Docker at all."""

from __future__ import annotations

import socket

import pytest
from doctor_cli import run_doctor

pytestmark = pytest.mark.infra


def test_real_daemon_answers(clean_docker_host):
    host = clean_docker_host
    run = run_doctor(
        "check", "--json", "--only", "docker-daemon", "--docker-host", host.dockerd.url
    )
    check = run.check("docker-daemon")
    assert run.code == 0 and check["status"] == "ok"
    version = host.client.version()
    assert (
        check["summary"] == f"Docker {version['Version']} answers at {host.dockerd.url}"
    )
    assert check["data"]["version"]["ApiVersion"] == version["ApiVersion"]
    assert "(from --docker-host)" in check["details"][0]


def test_hanging_daemon_times_out_within_the_check_timeout(
    netns, hanging_socket, tmp_path
):
    config = tmp_path / "config.toml"
    config.write_text("[checks]\ntimeout = 2\n")
    run = run_doctor(
        "check",
        "--json",
        "--docker-host",
        hanging_socket.url,
        netns=netns,
        config=config,
    )
    assert run.elapsed < 2 + 1, f"took {run.elapsed:.2f} s"
    check = run.check("docker-daemon")
    assert check["status"] == "error"
    assert "timed out" in check["summary"]
    assert "accepted the connection but did not answer within 1.5 s" in check["summary"]
    assert run.code == 1
    # ports does not wait for Docker forever either: it says what it could not see.
    assert (
        "containers not inspected: the Docker API did not answer"
        in run.check("ports")["details"]
    )


def test_missing_socket_says_not_running(tmp_path):
    url = f"unix://{tmp_path}/docker.sock"
    run = run_doctor("check", "--json", "--only", "docker-daemon", "--docker-host", url)
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert check["summary"] == (
        f"the Docker daemon is not running: {tmp_path}/docker.sock does not exist"
    )
    assert any("systemctl start docker" in h for h in check["hints"])


def test_stale_socket_without_daemon(tmp_path):
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # the file stays behind, as after a daemon crash
    run = run_doctor(
        "check", "--json", "--only", "docker-daemon", "--docker-host", f"unix://{path}"
    )
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert "nothing accepts connections" in check["summary"]
    assert "stale socket" in check["summary"]


def test_running_daemon_elsewhere_is_pointed_at(clean_docker_host, tmp_path):
    # The namespace dockerd is a real dockerd process on this machine: when the
    # configured socket is missing, the doctor shows where dockerd does listen.
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        f"unix://{tmp_path}/docker.sock",
    )
    check = run.check("docker-daemon")
    running = [d for d in check["details"] if d.startswith("running: dockerd")]
    assert any(str(clean_docker_host.dockerd.pid) in d for d in running), check
    assert "a dockerd is running but not at this endpoint" in check["hints"][0]


def test_not_installed(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f"[host]\nbin_dirs = ['{empty}']\n")
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        f"unix://{tmp_path}/docker.sock",
        config=config,
        env={"PATH": str(empty)},
    )
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert check["summary"] == "Docker is not installed (no dockerd binary found)"
    assert "apt-get install docker.io" in check["hints"][0]


def test_api_older_than_required(clean_docker_host, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[docker]\nmin_api_version = '9.99'\n")
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        clean_docker_host.dockerd.url,
        config=config,
    )
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert "older than the 9.99 this doctor needs" in check["summary"]


def test_permission_denied_names_the_remedy(clean_docker_host, unprivileged_venv):
    python = str(unprivileged_venv / "bin" / "python")
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        clean_docker_host.dockerd.url,
        python=python,
        as_nobody=True,
    )
    check = run.check("docker-daemon")
    assert check["status"] == "failure", check
    assert check["summary"] == (
        f"permission denied on {clean_docker_host.dockerd.socket_path} for user nobody"
    )
    assert "sudo usermod -aG docker nobody" in check["hints"][0]
    assert any(d.startswith("socket: srw-") for d in check["details"])
