"""Who manages dockerd (doctor/host/manager.py), outside a systemd machine: which
processes are daemons at all, and the init that really runs as PID 1 (a PID
namespace of its own, its /proc mounted) deciding how Docker is started. The
systemd case is in test_systemd_machine.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doctor_cli import run_doctor
from infra import stop_process
from shipyard_doctor.config import Config
from shipyard_doctor.host.gateway import Host, is_daemon_command


@pytest.mark.parametrize(
    ("args", "daemon"),
    [
        (("-d",), True),  # CoreOS 2014: /usr/bin/docker -d -H fd://
        (("-d", "-H", "fd://"), True),
        (("-H", "fd://", "-d"), True),
        (("--daemon",), True),
        (("daemon", "-H", "fd://"), True),  # Docker 1.8-1.11
        (("-H", "unix:///x.sock", "daemon"), True),
        (("run", "-d", "busybox"), False),  # a client: -d is run's detach
        (("-H", "unix:///x.sock", "run", "-d", "busybox"), False),
        (("container", "run", "-d", "busybox"), False),
        (("ps",), False),
        ((), False),
    ],
)
def test_only_daemon_command_lines_are_daemons(args, daemon):
    assert is_daemon_command(args) is daemon


def test_a_docker_run_d_client_is_not_a_daemon(clean_docker_host, hanging_socket):
    """A real `docker run -d` client (waiting on a hung API) next to a dockerd."""
    client = subprocess.Popen(
        ["docker", "-H", hanging_socket.url, "run", "-d", "busybox", "sleep", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            comm = Path(f"/proc/{client.pid}/comm").read_text().strip()
            if comm == "docker":
                break
            time.sleep(0.05)
        assert client.poll() is None, "the client should wait on the hung socket"
        pids = {p.pid for p in Host(Config()).dockerd_processes()}
        assert clean_docker_host.dockerd.pid in pids
        assert client.pid not in pids
    finally:
        stop_process(client)


def _init_script(tmp_path: Path, name: str) -> Path:
    """An executable named *name*: run as PID 1, its comm is *name*, and it runs
    its arguments as a child (so the doctor sees that init as PID 1)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / name
    script.write_text('#!/bin/sh\n"$@"\n')
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("pid1", "openrc", "script", "hint"),
    [
        ("init", False, True, "start Docker: service docker start"),
        ("init", True, True, "start Docker: rc-service docker start"),
        # No init (a container's entrypoint): an init script there is a leftover
        # of the package; the daemon itself is the way.
        (
            "entrypoint",
            False,
            True,
            "start Docker: dockerd > /var/log/docker.log 2>&1 &",
        ),
    ],
    ids=["sysvinit", "openrc", "none"],
)
def test_start_hint_follows_the_init_that_runs(
    require_infra, tmp_path, pid1, openrc, script, hint
):
    require_infra("unshare", "dockerd")
    run_dir, init_dir = tmp_path / "run", tmp_path / "etc" / "init.d"
    run_dir.mkdir()
    init_dir.mkdir(parents=True)
    if openrc:
        (run_dir / "openrc").mkdir()
    if script:
        (init_dir / "docker").write_text("#!/bin/sh\n")
    # Debian's unit is installed too: systemd is not PID 1, so it is never used.
    units = Path(__file__).parent / "data" / "systemd" / "debian" / "lib/systemd/system"
    config = tmp_path / "config.toml"
    config.write_text(
        "[host]\n"
        f"run_dir = {json.dumps(str(run_dir))}\n"
        f"init_dir = {json.dumps(str(init_dir))}\n"
        f"systemd_dirs = {json.dumps([str(units)])}\n"
        "[docker]\n"
        f'log_file = "{tmp_path}/docker.log"\n'
    )
    init = _init_script(tmp_path, pid1)
    # A PID namespace of its own with its /proc: PID 1 is the init named above.
    python = tmp_path / "python-under-init"
    python.write_text(
        "#!/bin/sh\n"
        f'exec unshare --pid --fork --mount-proc {init} {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        f"unix://{tmp_path}/missing.sock",
        config=config,
        python=str(python),
    )
    check = run.check("docker-daemon")
    assert check["status"] == "failure", check
    assert hint in check["hints"], check["hints"]
    assert not any("systemctl" in h for h in check["hints"]), check["hints"]
    # The installed unit is shown as what it is here: not what runs Docker.
    assert any(
        "is installed but does not run dockerd here: systemd is not PID 1" in d
        for d in check["details"]
    ), check["details"]


@pytest.mark.parametrize(
    ("cgroup", "kind", "unit", "uid"),
    [
        # /proc/PID/cgroup of dockerd as recorded on each kind of host
        ("0::/system.slice/docker.service\n", "systemd", "docker.service", None),
        (
            "12:pids:/system.slice/docker.service\n"
            "1:name=systemd:/system.slice/docker.service\n0::/\n",
            "systemd",
            "docker.service",
            None,
        ),
        (
            "0::/system.slice/snap.docker.dockerd.service\n",
            "snap",
            "snap.docker.dockerd.service",
            None,
        ),
        (
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
            "docker.service\n",
            "systemd-user",
            "docker.service",
            1000,
        ),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", None, None, None),
        ("0::/\n", None, None, None),
    ],
    ids=["v2", "v1-hybrid", "snap", "rootless", "login-session", "none"],
)
def test_the_unit_that_runs_dockerd_comes_from_its_cgroup(cgroup, kind, unit, uid):
    from shipyard_doctor.host.manager import _unit_of_cgroup
    from shipyard_doctor.host.processes import cgroup_path

    found = _unit_of_cgroup(cgroup_path(cgroup))
    assert (found[0].value if found[0] else None, found[1], found[2]) == (
        kind,
        unit,
        uid,
    )


@pytest.mark.parametrize(
    ("comm", "dirs", "init"),
    [
        ("systemd", ["systemd/system"], "systemd"),
        # /run/systemd/system shared into a container whose PID 1 is not systemd
        ("sh", ["systemd/system"], "none"),
        ("systemd", [], "none"),
        ("init", [], "sysvinit"),
        ("init", ["openrc"], "openrc"),
        ("openrc-init", [], "openrc"),
        ("tini", [], "none"),
    ],
)
def test_what_runs_as_init(tmp_path, comm, dirs, init):
    from shipyard_doctor.host.manager import detect_init

    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "comm").write_text(comm + "\n")
    for d in dirs:
        (tmp_path / "run" / d).mkdir(parents=True)
    found, _ = detect_init(str(tmp_path / "proc"), str(tmp_path / "run"))
    assert found.value == init


def test_restart_and_start_commands_per_manager():
    from shipyard_doctor.host.manager import DockerManager, Init, Kind

    systemd = DockerManager(Kind.SYSTEMD, Init.SYSTEMD, True, unit="docker.service")
    assert systemd.restart_commands(reset_failed=True) == (
        ("systemctl", "daemon-reload"),
        ("systemctl", "reset-failed", "docker.service", "docker.socket"),
        ("systemctl", "restart", "docker.service"),
    )
    assert systemd.start_command(root=False) == "sudo systemctl start docker.service"
    rootless = DockerManager(
        Kind.SYSTEMD_USER, Init.SYSTEMD, True, unit="docker.service", uid=1000
    )
    assert rootless.start_command(root=False) == (
        "systemctl --user start docker.service"
    )
    manual = DockerManager(
        Kind.MANUAL, Init.NONE, True, 42, ("dockerd", "--config-file", "/x.json")
    )
    assert manual.restart_commands() == ()
    assert manual.start_command(root=True) == "dockerd --config-file /x.json"
    sysv = DockerManager(Kind.SYSVINIT, Init.SYSVINIT, False)
    assert sysv.restart_commands() == (("service", "docker", "restart"),)
    assert systemd.reload_command() == ("systemctl", "reload", "docker.service")
    assert rootless.reload_command() == (
        "systemctl",
        "--user",
        "reload",
        "docker.service",
    )
    assert manual.reload_command() == ("kill", "-HUP", "42")
