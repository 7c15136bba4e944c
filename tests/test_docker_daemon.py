"""docker-daemon on real endpoints: a namespace dockerd, a socket that never answers,
a missing socket, a stale one, a socket the user may not open, and no Docker at all;
and real dockerds that fail to start, whose log names the cause."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import infra
import pytest
from doctor_cli import DoctorRun, run_doctor

pytestmark = pytest.mark.infra


def daemon_run(url: str, **kw) -> DoctorRun:
    """`check --json --only docker-daemon --docker-host URL`, as a user runs it."""
    return run_doctor(
        "check", "--json", "--only", "docker-daemon", "--docker-host", url, **kw
    )


def test_real_daemon_answers(clean_docker_host):
    host = clean_docker_host
    run = daemon_run(host.dockerd.url)
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
    # Only the check timeout can end it: the Docker timeout is far longer.
    config.write_text("[checks]\ntimeout = 2\n[docker]\ntimeout = 30\n")
    run = run_doctor(
        "check",
        "--json",
        "--docker-host",
        hanging_socket.url,
        netns=netns,
        config=config,
    )
    assert run.elapsed < 2 + 3, f"took {run.elapsed:.2f} s"
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
    run = daemon_run(url)
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert check["summary"] == (
        f"the Docker daemon is not running: {tmp_path}/docker.sock does not exist"
    )
    # How to start it depends on who manages Docker here (test_manager.py).
    assert any(h.startswith("start Docker: ") for h in check["hints"])


def test_stale_socket_without_daemon(tmp_path):
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # the file stays behind, as after a daemon crash
    run = daemon_run(f"unix://{path}")
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert "nothing accepts connections" in check["summary"]
    assert "stale socket" in check["summary"]


def test_running_daemon_elsewhere_is_pointed_at(clean_docker_host, tmp_path):
    # The namespace dockerd is a real dockerd process on this machine: when the
    # configured socket is missing, the doctor shows where dockerd does listen.
    run = daemon_run(f"unix://{tmp_path}/docker.sock")
    check = run.check("docker-daemon")
    running = [d for d in check["details"] if d.startswith("running: dockerd")]
    assert any(str(clean_docker_host.dockerd.pid) in d for d in running), check
    assert "a dockerd is running but not at this endpoint" in check["hints"][0]


def test_not_installed(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f"[host]\nbin_dirs = ['{empty}']\n")
    run = daemon_run(
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
    run = daemon_run(clean_docker_host.dockerd.url, config=config)
    check = run.check("docker-daemon")
    assert check["status"] == "failure"
    assert "older than the 9.99 this doctor needs" in check["summary"]


def test_permission_denied_names_the_remedy(clean_docker_host, unprivileged_venv):
    python = str(unprivileged_venv / "bin" / "python")
    run = daemon_run(clean_docker_host.dockerd.url, python=python, as_nobody=True)
    check = run.check("docker-daemon")
    assert check["status"] == "failure", check
    assert check["summary"] == (
        f"permission denied on {clean_docker_host.dockerd.socket_path} for user nobody"
    )
    assert "sudo usermod -aG docker nobody" in check["hints"][0]
    assert any(d.startswith("socket: srw-") for d in check["details"])


# --- a daemon that is down: its log names the cause ------------------------------


# Where the doctor finds it too: run_doctor's PATH (sbin included).
DOCKERD = shutil.which("dockerd", path="/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")


@pytest.fixture
def failing_dockerd(netns, require_infra):
    """``start(config, *flags)`` runs a real dockerd in the test namespace with its
    own root, waits until it exits by itself and returns (its log, its socket)."""
    require_infra("dockerd")
    roots: list[Path] = []

    def start(config: dict[str, object], *flags: str) -> tuple[Path, Path]:
        # Named like Dockerd's roots, so a killed run's leftovers are reaped too.
        root = infra._mkdtemp("d")
        roots.append(root)
        settings = {
            "data-root": str(root / "data"),
            "exec-root": str(root / "x"),
            "pidfile": str(root / "dockerd.pid"),
            "cgroup-parent": f"/{root.name}",
            **config,
        }
        text = json.dumps(settings).replace("ROOT", str(root))
        (root / "daemon.json").write_text(text)
        log = root / "dockerd.log"
        argv = [str(DOCKERD), "--config-file", str(root / "daemon.json")]
        argv += [flag.replace("ROOT", str(root)) for flag in flags]
        proc = netns.spawn(argv, log_path=log, cwd=root)
        assert proc.wait(timeout=30) != 0, infra.log_tail(log)
        return log, root / "d.sock"

    try:
        yield start
    finally:
        for root in roots:
            infra._teardown_root(root)  # Dockerd.stop's cleanup: processes, mounts


def _doctor_on_down_daemon(netns, log: Path, sock: Path, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f"[docker]\nlog_file = '{log}'\n")
    run = daemon_run(f"unix://{sock}", netns=netns, config=config)
    return run.check("docker-daemon")


def test_down_daemon_hosts_conflict_is_named(failing_dockerd, netns, tmp_path):
    # -H on the command line and "hosts" in the config file: dockerd refuses.
    log, sock = failing_dockerd(
        {"hosts": ["tcp://127.0.0.1:4243"]}, "-H", "unix://ROOT/d.sock"
    )
    check = _doctor_on_down_daemon(netns, log, sock, tmp_path)
    assert check["status"] == "failure"
    assert check["summary"] == (
        f"the Docker daemon is not running: {sock} does not exist (its log says: "
        '-H flags and daemon.json "hosts" conflict)'
    )
    said = [d for d in check["details"] if d.startswith("log says: ")]
    assert said and "specified both as a flag and in the configuration file" in said[0]
    assert f"from flag: [unix://{sock}]" in said[0]
    assert 'remove "hosts" from ' in check["hints"][0]
    # The drop-in names this host's dockerd (Debian: /usr/sbin/dockerd).
    assert f"ExecStart= and ExecStart={DOCKERD} (no -H)" in check["hints"][1]
    assert check["data"]["causes"][0]["id"] == "hosts-flag-and-file"


def test_down_daemon_other_causes(failing_dockerd, netns, listeners, tmp_path):
    log, sock = failing_dockerd({}, "-H", "fd://")
    check = _doctor_on_down_daemon(netns, log, sock, tmp_path)
    assert check["summary"].endswith(
        "(its log says: -H fd:// without socket activation)"
    )
    assert "systemctl enable --now docker.socket" in check["hints"][0]

    log, sock = failing_dockerd({"hosts": ["unix://ROOT/d.sock"], "live-restor": True})
    check = _doctor_on_down_daemon(netns, log, sock, tmp_path)
    assert check["data"]["causes"][0]["id"] == "unknown-directive"
    assert "live-restor" in check["hints"][0]

    listeners.tcp(netns, "127.0.0.1", 4243)
    log, sock = failing_dockerd(
        {"hosts": ["tcp://127.0.0.1:4243", "unix://ROOT/d.sock"], "tls": False}
    )
    check = _doctor_on_down_daemon(netns, log, sock, tmp_path)
    assert check["summary"].endswith("(its log says: its API address is taken)")
    assert "ss -ltnp 'sport = :4243'" in check["hints"][0]
