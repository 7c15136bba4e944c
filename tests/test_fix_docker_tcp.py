"""The docker-tcp fix for real: a namespace dockerd whose daemon.json is the doctor's
`[docker] daemon_json`, restarted by a `[docker] restart_command` that stops its pid
and starts it again in the same namespace; verified by the check passing and by
/_ping answering on 127.0.0.1:4243 inside the namespace; undone byte-identical; a
restart that does not bring TCP up rolled back. The systemd routes (systemd cannot
be PID 1 here) are planned from the recorded units in tests/data/systemd and checked
with `systemd-analyze verify` on temp copies."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from doctor_cli import as_if_systemd_runs_docker, run_doctor
from infra import Dockerd, ManagedProcess, Netns, missing, require_tools
from shipyard_doctor.config import load_config
from shipyard_doctor.fixengine.restart import SYSTEMCTL_RESTART, Restart
from shipyard_doctor.fixes.docker_tcp import (
    DockerTcpFix,
    agent_note,
    choose_route,
    restart_commands,
    route_steps,
    undo_restart,
)
from shipyard_doctor.fixing import FixOptions, Symlink, WriteFile
from shipyard_doctor.host.agent import agent_version
from shipyard_doctor.host.daemonconf import unit_setup
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import Result

DATA = Path(__file__).parent / "data" / "systemd"
TCP = "tcp://127.0.0.1:4243"

# Run by `sh -c` from the doctor (inside the namespace): stop the dockerd of the
# pidfile, start it again with the same --config-file in the same namespace, and
# return once /_ping answers on its unix socket.
RESTART_SCRIPT = r"""
import os, signal, socket, subprocess, sys, time
pidfile, config, netns, sock, log, dockerd = sys.argv[1:7]

def state(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None

def ping():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.0 200")
    except OSError:
        return False
    finally:
        s.close()

pid = int(open(pidfile).read())
os.kill(pid, signal.SIGTERM)
deadline = time.monotonic() + 30
while state(pid) not in (None, "Z"):  # a zombie until its parent (pytest) reaps it
    if time.monotonic() > deadline:
        sys.exit(f"dockerd {pid} did not stop")
    time.sleep(0.05)
with open(log, "ab") as out:
    subprocess.Popen(
        ["nsenter", f"--net={netns}", dockerd, "--config-file", config],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
deadline = time.monotonic() + 30
while not ping():
    if time.monotonic() > deadline:
        sys.exit("dockerd did not answer again within 30 s")
    time.sleep(0.05)
"""


class RestartableDockerd:
    """A namespace dockerd plus the command that restarts it; ``stop`` also stops
    the dockerd a restart started (its pid is in the pidfile, not in ``daemon``)."""

    def __init__(self, netns: Netns, workdir: Path, **start: object) -> None:
        self.dockerd_bin = require_tools("dockerd", "nsenter")["dockerd"]
        self.daemon = Dockerd.start(netns, **start)  # type: ignore[arg-type]
        self.script = workdir / "restart-dockerd.py"
        self.script.write_text(RESTART_SCRIPT)

    @property
    def daemon_json(self) -> Path:
        return self.daemon.root / "daemon.json"

    @property
    def pidfile(self) -> Path:
        return self.daemon.root / "dockerd.pid"

    def restart_command(self) -> str:
        d = self.daemon
        return shlex.join(
            [
                sys.executable,
                str(self.script),
                str(self.pidfile),
                str(self.daemon_json),
                str(d.netns.path),
                str(d.socket_path),
                str(d.log_path),
                self.dockerd_bin,
            ]
        )

    def current_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.current_pid()
        try:
            if pid is not None and pid != self.daemon.pid:
                _stop_restarted(self.daemon, pid)
        finally:
            self.daemon.stop()  # kills whatever is left under its root, unmounts
            _reap_restarted_dockerds()


def _reap_restarted_dockerds() -> None:
    """waitpid() the dockerds that restarts stopped: re-parented to pytest (a
    subreaper), nobody else waits for them; a Popen's own child is left alone."""
    managed = {p.pid for p in ManagedProcess.registry}
    for pid in (int(e) for e in os.listdir("/proc") if e.isdigit()):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm = stat.split("(", 1)[1].rsplit(")", 1)[0]
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        ours = int(ppid) == os.getpid() and pid not in managed
        if comm == "dockerd" and state == "Z" and ours:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _stop_restarted(daemon: Dockerd, pid: int) -> None:
    """SIGTERM the restarted dockerd (our child: pytest is a subreaper) and reap it."""
    import docker

    with contextlib.suppress(Exception):
        api = docker.APIClient(base_url=daemon.url, timeout=10)
        for c in api.containers(all=True, quiet=True):
            api.remove_container(c["Id"], force=True)
        api.close()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not ours: wait for it to go
            if not Path(f"/proc/{pid}").exists():
                return
            done = 0
        if done:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@pytest.fixture
def restartable(netns, tmp_path) -> Iterator[Callable[..., RestartableDockerd]]:
    """``restartable(**Dockerd.start kwargs)`` in the test's namespace, stopped
    afterwards."""
    made: list[RestartableDockerd] = []

    def start(**kw: object) -> RestartableDockerd:
        made.append(RestartableDockerd(netns, tmp_path, **kw))
        return made[-1]

    try:
        yield start
    finally:
        for host in reversed(made):
            host.stop()


def write_config(tmp_path: Path, **sections: dict[str, object]) -> Path:
    """A doctor config: the journal and every path in tmp_path, no systemd units
    (an empty dir) unless given."""
    empty = tmp_path / "no-units"
    empty.mkdir(exist_ok=True)
    values: dict[str, dict[str, object]] = {
        "docker": {"tcp": "127.0.0.1:4243"},
        # run_dir and init_dir empty: whatever this machine's PID 1 is, the doctor
        # never sees a service manager, so it can never restart a real Docker.
        "host": {
            "systemd_dirs": [str(empty)],
            "run_dir": str(empty),
            "init_dir": str(empty),
        },
        "fix": {"journal_dir": str(tmp_path / "journal")},
    }
    for name, keys in sections.items():
        values.setdefault(name, {}).update(keys)
    lines = []
    for name, keys in values.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def tcp_ping(netns: Netns) -> str:
    """GET /_ping on 127.0.0.1:4243 inside the namespace: "OK" or the error."""
    code = (
        "import urllib.request as u\n"
        "url = 'http://127.0.0.1:4243/_ping'\n"
        "try: print(u.urlopen(url, timeout=3).read().decode())\n"
        "except OSError as e: print(type(getattr(e, 'reason', e)).__name__)"
    )
    return netns.run([sys.executable, "-c", code], check=True).stdout.strip()


@pytest.fixture(scope="module")
def agent_binaries(tmp_path_factory) -> dict[str, Path]:
    """Real ELF binaries carrying an agent's strings, as the Go agent does
    (agent.go: const VERSION = "0.3.1", flag help "Shows Agent Version")."""
    gcc = shutil.which("gcc")
    if gcc is None:
        missing("gcc: apt-get install gcc")
    made = {}
    workdir = tmp_path_factory.mktemp("agents")
    for name, version in (("v025", '"0.2.5"'), ("v031", '"0.3.1"'), ("none", '""')):
        source = workdir / f"{name}.c"
        source.write_text(
            "#include <stdio.h>\n"
            f"const char VERSION[] = {version};\n"
            'int main(void) { printf("%s Shows Agent Version\\n", VERSION); }\n'
        )
        subprocess.run([gcc, "-o", str(workdir / name), str(source)], check=True)
        made[name] = workdir / name
    return made


def test_daemon_json_route_applied_verified_and_undone(
    restartable, netns, tmp_path, agent_binaries
):
    host = restartable()
    daemon_json = host.daemon_json
    before, mode = daemon_json.read_bytes(), daemon_json.stat().st_mode
    config = write_config(
        tmp_path,
        docker={
            "daemon_json": str(daemon_json),
            "restart_command": host.restart_command(),
        },
        agent={"binary": str(agent_binaries["v025"])},
    )
    args = ("--only", "docker-tcp", "--docker-host", host.daemon.url, "--json")
    run = run_doctor("check", "--fix", "--yes", *args, netns=netns, config=config)
    assert run.stderr == "", run.stderr
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["recheck"]["status"] == "ok"
    assert fix["recheck"]["summary"].endswith(f"answers on {TCP}")
    plan = fix["plan"]
    assert plan["summary"].startswith(f"add {TCP} to dockerd's addresses through ")
    assert plan["steps"][0] == f"change {daemon_json}"
    assert plan["steps"][1].startswith(f"run: sh -c '{sys.executable}")
    assert plan["risk"].startswith(
        "restarts dockerd, which STOPS every running container (none is running "
        f"now): live-restore is off in {daemon_json}"
    )
    assert f"shipyard-agent {agent_binaries['v025']} is 0.2.5: it needs " in str(
        plan["notes"]
    )
    assert run.code == 0
    # The real effect: Docker answers on TCP inside the namespace, from a new dockerd
    # whose daemon.json kept every other key and the unix socket.
    assert tcp_ping(netns) == "OK"
    assert host.current_pid() != host.daemon.pid
    written = json.loads(daemon_json.read_text())
    assert written["hosts"] == [host.daemon.url, TCP]
    assert written["data-root"] == host.daemon.config["data-root"]

    again = run_doctor("check", "--fix", "--yes", *args, netns=netns, config=config)
    assert again.check("docker-tcp")["status"] == "ok"
    assert again.doc["fixes"] == []  # nothing offered: the check passes

    undo = run_doctor("undo", netns=netns, config=config)
    assert undo.code == 0, undo.stderr
    assert f"  restored {daemon_json}\n" in undo.stdout
    # dockerd started again, from the restored file
    assert f"  ran after restoring: sh -c {sys.executable}" in undo.stdout
    assert daemon_json.read_bytes() == before
    assert daemon_json.stat().st_mode == mode
    assert tcp_ping(netns) == "ConnectionRefusedError"
    assert host.daemon.ping()  # the unix socket answers again


def test_hand_started_dockerd_next_to_an_installed_unit_uses_its_config_file(
    restartable, netns, tmp_path
):
    """Issue 8, item 1: Debian's docker.service is installed, but the dockerd that
    runs was started by hand with --config-file X (and [docker] daemon_json is
    left at /etc/docker/daemon.json): X is the route, never a drop-in."""
    host = restartable()
    daemon_json = host.daemon_json
    before = daemon_json.read_bytes()
    first = tmp_path / "etc-units"
    first.mkdir()
    config = write_config(
        tmp_path,
        docker={"restart_command": host.restart_command()},
        host={"systemd_dirs": [str(first), str(_vendor_dir("debian"))]},
    )
    args = ("docker-tcp", "--docker-host", host.daemon.url, "--json")
    # A dry run first: a wrong route must not touch this machine's /etc.
    dry = run_doctor("fix", "--dry-run", *args, netns=netns, config=config)
    (planned,) = dry.doc["fixes"]
    assert planned["plan"]["steps"][0] == f"change {daemon_json}", planned
    check = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-tcp",
        "--docker-host",
        host.daemon.url,
        netns=netns,
        config=config,
    ).check("docker-tcp")
    assert (
        f"manager: dockerd (pid {host.daemon.pid}) is managed by nothing: it was "
        "started by hand or by a script; init: none"
    ) in check["details"]
    assert (
        "docker.service is installed but does not run dockerd here: shown, never "
        "acted on"
    ) in check["details"]
    run = run_doctor("fix", "--yes", *args, netns=netns, config=config)
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert "daemon.json" in fix["plan"]["summary"]
    assert tcp_ping(netns) == "OK"
    assert list(first.iterdir()) == []  # no drop-in
    undo = run_doctor("undo", config=config, netns=netns)
    assert undo.code == 0, undo.stderr
    assert daemon_json.read_bytes() == before


def test_restart_that_does_not_listen_on_tcp_is_rolled_back(
    restartable, netns, tmp_path
):
    # A reload (SIGHUP) is not a restart: "hosts" is not reloadable.
    host = restartable()
    before = host.daemon_json.read_bytes()
    reload = f"kill -HUP $(cat {host.pidfile})"
    config = write_config(
        tmp_path,
        docker={"daemon_json": str(host.daemon_json), "restart_command": reload},
    )
    run = run_doctor(
        "fix",
        "docker-tcp",
        "--yes",
        "--json",
        "--docker-host",
        host.daemon.url,
        netns=netns,
        config=config,
    )
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "rolled-back", fix
    assert fix["message"].startswith(
        f"rolled back: docker-tcp still failure: Docker API does not answer on {TCP}"
    )
    assert fix["rollback"] == [
        f"not reversible: sh -c {reload} (restart dockerd ([docker] "
        f"restart_command: {reload}))",
        f"restored {host.daemon_json}",
        f"ran after restoring: sh -c {reload}",
    ]
    assert host.daemon_json.read_bytes() == before
    assert run.code == 1
    assert host.current_pid() == host.daemon.pid and host.daemon.ping()


@pytest.mark.parametrize(
    ("units", "daemon_json", "tcp", "restart_command", "summary"),
    [
        # Issue 8: Debian's docker.service is installed, but systemd is not PID 1
        # and no dockerd runs: the unit is shown, never acted on. (The refusals
        # under a real systemd are in test_systemd_machine.py.)
        (
            "debian",
            {},
            "127.0.0.1:4243",
            "",
            "refused: no dockerd runs here and no service manager would start one "
            "from a unit (Docker (not running) is managed by nothing: no dockerd "
            "runs and no service would start one; init: none)",
        ),
    ],
    ids=["unit-installed-but-not-running-it"],
)
def test_refusals_change_nothing(
    netns, tmp_path, units, daemon_json, tcp, restart_command, summary
):
    first = tmp_path / "etc"
    first.mkdir()
    vendor = _vendor_dir(units)
    dj = tmp_path / "daemon.json"
    dj.write_text(json.dumps(daemon_json))
    config = write_config(
        tmp_path,
        docker={"tcp": tcp, "daemon_json": str(dj), "restart_command": restart_command},
        host={"systemd_dirs": [str(first), str(vendor)], "run_dir": str(first)},
    )
    run = run_doctor(
        "fix",
        "docker-tcp",
        "--yes",
        "--json",
        "--docker-host",
        f"unix://{tmp_path}/docker.sock",
        netns=netns,
        config=config,
    )
    (fix,) = run.doc["fixes"]
    assert fix["outcome"] == "nothing-to-do", fix
    assert fix["message"].startswith(summary.format(dj=dj, first=first)), fix
    assert fix["plan"]["steps"] == []
    assert list(first.iterdir()) == [] and json.loads(dj.read_text()) == daemon_json
    assert not (tmp_path / "journal").exists() or not any(
        (tmp_path / "journal").glob("*/manifest.json")
    )
    shown = run_doctor(
        "check", "--json", "--only", "docker-tcp", netns=netns, config=config
    ).check("docker-tcp")["details"]
    assert (
        "docker.service is installed but does not run dockerd here: shown, never "
        "acted on"
    ) in shown


def _vendor_dir(name: str) -> Path:
    return {
        "debian": DATA / "debian/lib/systemd/system",
        "moby": DATA / "moby/usr/lib/systemd/system",
        "coreos": DATA / "coreos/usr/lib/systemd/system",
    }[name]


def _plan_host(tmp_path: Path, dirs: list[Path]) -> Host:
    config = write_config(
        tmp_path,
        docker={
            "host": f"unix://{tmp_path}/docker.sock",
            "daemon_json": str(tmp_path / "daemon.json"),
            "restart_command": "true",
        },
        host={"systemd_dirs": [str(d) for d in dirs], "run_dir": str(tmp_path)},
    )
    host = Host(load_config(str(config)), {"PATH": "/usr/sbin:/usr/bin"})
    return as_if_systemd_runs_docker(host)


def systemd_verify(dirs: list[Path], unit: str) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` of ``unit`` as found in ``dirs`` (+ the defaults)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        missing("systemd-analyze: apt-get install systemd")
    path = ":".join(str(d) for d in dirs) + ":"
    return subprocess.run(
        [tool, "verify", unit],
        env={**os.environ, "SYSTEMD_UNIT_PATH": path},
        capture_output=True,
        text=True,
    )


# What systemd-analyze says about the recorded units on a machine that is not that
# host (no CoreOS dockerd binary, no early-docker.target), not about the drop-in.
FOREIGN_HOST = re.compile(
    r"(Command /\S+ is not executable: No such file or directory"
    r"|Failed to create docker.service/start: Unit [\w.-]+ not found\.)$"
)


@pytest.mark.parametrize(
    ("units", "exec_start"),
    [
        (
            "debian",
            "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock "
            "$DOCKER_OPTS",
        ),
        (
            "moby",
            "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock",
        ),
        (
            "coreos",
            "/usr/lib/coreos/dockerd --host=fd:// --containerd=/var/run/docker/"
            "libcontainerd/docker-containerd.sock $DOCKER_OPTS $DOCKER_CGROUPS "
            "$DOCKER_OPT_BIP $DOCKER_OPT_MTU $DOCKER_OPT_IPMASQ",
        ),
    ],
    ids=["debian", "moby", "coreos"],
)
def test_dropin_for_recorded_units_passes_systemd_verify(tmp_path, units, exec_start):
    first, vendor = tmp_path / "etc", tmp_path / "vendor"
    first.mkdir()
    shutil.copytree(_vendor_dir(units), vendor)
    host = _plan_host(tmp_path, [first, vendor])
    result = Result.failure("not on TCP", data={"answers": False, "exposures": []})
    plan = DockerTcpFix().plan(result, host, FixOptions())
    write, restart = plan.steps
    assert isinstance(write, WriteFile)
    assert write.path == str(first / "docker.service.d/shipyard-doctor.conf")
    assert write.content == (
        f"[Service]\nExecStart=\nExecStart={exec_start} -H {TCP}\n"
    )
    assert restart.argv == ("sh", "-c", "true")
    assert restart.after_undo == ("sh", "-c", "true")  # undo restarts dockerd last
    Path(write.path).parent.mkdir()
    Path(write.path).write_text(write.content)
    done = systemd_verify([first, vendor], "docker.service")
    problems = [
        line for line in done.stderr.splitlines() if not FOREIGN_HOST.search(line)
    ]
    assert problems == [], done.stderr
    # The same check fails a drop-in that does not reset ExecStart= first.
    Path(write.path).write_text(write.content.replace("ExecStart=\n", "", 1))
    bad = systemd_verify([first, vendor], "docker.service")
    assert "more than one ExecStart= setting" in bad.stderr


def test_coreos_docker_tcp_socket_is_bound_to_loopback_and_enabled(tmp_path):
    # CoreOS's docker-tcp.socket present but not enabled (no sockets.target.wants):
    # the host's own way, so the fix writes that socket on loopback and enables it.
    first, vendor = tmp_path / "etc", tmp_path / "vendor"
    first.mkdir()
    shutil.copy(DATA / "coreos/etc/systemd/system/docker-tcp.socket", first)
    shutil.copytree(_vendor_dir("coreos"), vendor)
    host = _plan_host(tmp_path, [first, vendor])
    unit = unit_setup(host)
    systemd = Restart(SYSTEMCTL_RESTART, "systemd is PID 1", systemd=True)
    route = choose_route(host, None, unit, systemd)
    assert route is not None and route.kind == "socket"
    write, link = route_steps(host, route, unit.setup, TCP)
    assert isinstance(write, WriteFile) and isinstance(link, Symlink)
    assert write.path == str(first / "docker-tcp.socket")
    assert (
        "ListenStream=127.0.0.1:4243\nService=docker.service\nBindIPv6Only=both\n"
        in (write.content)
    )
    assert link.path == str(first / "sockets.target.wants/docker-tcp.socket")
    assert restart_commands(route, systemd)[1:] == (
        ("systemctl", "stop", "docker.service"),
        ("systemctl", "restart", "docker-tcp.socket"),
        ("systemctl", "start", "docker.service"),
    )
    assert undo_restart(route, systemd)[-1].startswith(
        "systemctl daemon-reload; systemctl stop docker.service; systemctl stop "
        "docker-tcp.socket; "
    )
    # Without systemd to start the socket, the drop-in is the route.
    assert choose_route(host, None, unit, Restart((("true",),), "x")).kind == "drop-in"
    Path(write.path).write_text(write.content)
    done = systemd_verify([first, vendor], "docker-tcp.socket")
    assert done.returncode == 0, done.stderr


def test_agent_version_read_from_the_binary(tmp_path, agent_binaries):
    assert agent_version(str(agent_binaries["v031"])) == "0.3.1"
    assert agent_version(str(agent_binaries["v025"])) == "0.2.5"
    assert agent_version(str(agent_binaries["none"])) is None
    host = _plan_host(tmp_path, [tmp_path])
    config = host.config
    for name, expected in (
        (
            "v031",
            "is 0.3.1: it talks to the unix socket (-docker "
            "/var/run/docker.sock), so TCP is not needed at all",
        ),
        (
            "none",
            "version unknown (no single version string in the binary); "
            "agents <= v0.2.5 need TCP, v0.3.0+ do not",
        ),
    ):
        from dataclasses import replace

        agent = replace(config.agent, binary=str(agent_binaries[name]))
        note = agent_note(Host(replace(config, agent=agent), {}))
        assert note.endswith(expected), note
