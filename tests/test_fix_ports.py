"""The ports fix applied for real: inside a test host's network namespace, with real
listeners on Shipyard's ports, stand-in Shipyard containers on the session dockerd,
and the doctor's config file in a temp dir (or, for a host without any config file,
/etc and /var/lib overlaid by temp dirs in a private mount namespace, so the real
ones are never written). Each fix is verified by the ports check passing again and
by its real effect, then undone byte for byte; a second run changes nothing.

The TOML edit and the cgroup reading under it are tested on real files: the
configuration block of this project's README and /proc/<pid>/cgroup texts recorded
on real hosts."""

from __future__ import annotations

import os
import signal
import stat
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from doctor_cli import run_doctor
from infra import Netns, stop_process, wait_listening
from shipyard_doctor.fixengine.tomledit import TomlEditError, set_value
from shipyard_doctor.host.processes import cgroup_path, process_service, service_of

REPO = Path(__file__).resolve().parents[1]

# --- the edit of the doctor's own config ----------------------------------------------


def readme_config() -> str:
    """The configuration block documented in README.md, as a user would copy it."""
    text = (REPO / "README.md").read_text()
    start = text.index("```toml\n[docker]") + len("```toml\n")
    return text[start : text.index("```", start)]


def test_set_value_changes_one_line_of_the_readme_config():
    original = readme_config()
    edited = set_value(original, ("stack", "ports"), "shipyard", 8002)
    changed = [
        (a, b)
        for a, b in zip(original.splitlines(), edited.splitlines(), strict=True)
        if a != b
    ]
    assert changed == [
        (
            "shipyard = 8001                        # a service with one fixed port: "
            "its name",
            "shipyard = 8002                        # a service with one fixed port: "
            "its name",
        )
    ]
    # A key with a slash is quoted and goes after the table's last key.
    added = set_value(original, ("stack", "ports"), "discovery/7001", 7101)
    assert tomllib.loads(added)["stack"]["ports"] == {
        "shipyard": 8001,
        "discovery/7001": 7101,
    }
    assert "\nshipyard = 8001 " in added and '"discovery/7001" = 7101\n' in added
    assert added.replace('"discovery/7001" = 7101\n', "", 1) == original


def test_set_value_appends_the_table_and_refuses_what_it_cannot_edit():
    assert set_value("", ("stack", "ports"), "shipyard", 8001) == (
        "[stack.ports]\nshipyard = 8001\n"
    )
    kept = "# mine\n[fix]\njournal_dir = '/tmp/j'  # here"
    assert set_value(kept, ("stack", "ports"), "shipyard", 8001) == (
        kept + "\n\n[stack.ports]\nshipyard = 8001\n"
    )
    for written in ("[stack]\nports = { lb = 8081 }\n", "[stack]\nports.lb = 8081\n"):
        with pytest.raises(TomlEditError, match="set the value by hand"):
            set_value(written, ("stack", "ports"), "shipyard", 8001)
    with pytest.raises(TomlEditError, match="not valid TOML"):
        set_value("[stack\n", ("stack", "ports"), "shipyard", 8001)


# --- which service runs a process -----------------------------------------------------

# This machine (cgroup v1 hybrid, no systemd running): `cat /proc/self/cgroup`.
HERE = """9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/5d8367a5e215ac342680436b7de64347
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""
# Ubuntu (hybrid), `cat /proc/727/cgroup` of cron, from a systemd lab write-up in a
# public GitHub repository (code search id 33714137901).
CRON = """12:freezer:/
11:perf_event:/
10:blkio:/system.slice/cron.service
9:memory:/system.slice/cron.service
8:hugetlb:/
7:rdma:/
6:pids:/system.slice/cron.service
5:cpu,cpuacct:/system.slice/cron.service
4:net_cls,net_prio:/
3:cpuset:/
2:devices:/system.slice/cron.service
1:name=systemd:/system.slice/cron.service
0::/system.slice/cron.service
"""
# A shell in GNOME Terminal (cgroup v2): unonweb/doc.it linux/_linux.cgroups.md.
TERMINAL = (
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
    "app-org.gnome.Terminal.slice/vte-spawn-12ed9380-2972-4c2b-843d-683d39022b48.scope"
)
# A container's process under snap's dockerd with the cgroupfs driver: v1 hierarchies
# say /docker/<id>, the unified one still says the daemon's service (a blog post on
# Docker cgroups in a public GitHub repository, code search id 690824476).
SNAP_CONTAINER = (
    "1:name=systemd:/docker/"
    "ba3398f7201b5ececf439dcadea00569d5213ae83f94135b89c3bcc7dadb2136\n"
    "0::/system.slice/snap.docker.dockerd.service\n"
)


def test_service_of_recorded_cgroups():
    assert (cgroup_path(HERE), service_of(HERE)) == ("/", None)
    assert service_of(CRON) == "cron.service"
    assert service_of(TERMINAL) is None  # a user's own service manager
    assert cgroup_path(SNAP_CONTAINER).startswith("/docker/")
    assert service_of(SNAP_CONTAINER) is None  # never "stop dockerd" for a container
    assert service_of("") is None


def test_service_of_live_processes():
    # Live: this test's own process, and a pid that does not exist.
    own = Path(f"/proc/{os.getpid()}/cgroup").read_text()
    assert process_service(os.getpid()) == service_of(own)
    assert process_service(2**22 + 1) is None


# --- the fix on a test host -----------------------------------------------------------


def write_config(tmp_path: Path) -> tuple[Path, bytes]:
    """The doctor's config as a user keeps it (a comment, mode 0640); the journal in
    a temp dir."""
    config = tmp_path / "config.toml"
    config.write_text(
        "# shipyard-doctor on this host\n"
        f"[fix]\njournal_dir = '{tmp_path / 'journal'}'  # not /var/lib\n"
    )
    config.chmod(0o640)
    return config, config.read_bytes()


def ports(netns: Netns, config: Path | None, *extra: str, **kw) -> dict:
    """`check --only ports` in the namespace; Docker is asked only where a test
    gives its test daemon (never the machine's own)."""
    run = run_doctor(
        "check", "--json", "--only", "ports", *extra, netns=netns, config=config, **kw
    )
    assert run.stdout, run.stderr
    return run.doc


def no_docker(tmp_path: Path) -> tuple[str, str]:
    return ("--docker-host", f"unix://{tmp_path / 'no-docker.sock'}")


def bindable(netns: Netns, port: int) -> bool:
    script = (
        "import socket, sys\n"
        "for fam, host in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):\n"
        "    s = socket.socket(fam); s.bind((host, int(sys.argv[1]))); s.close()\n"
    )
    return netns.run([sys.executable, "-c", script, str(port)]).returncode == 0


def test_taken_port_moves_shipyard_then_undo(netns, listeners, tmp_path):
    holder = listeners.tcp(netns, "0.0.0.0", 8000)
    config, before = write_config(tmp_path)
    doc = ports(netns, config, "--fix", "--yes", *no_docker(tmp_path))
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["recheck"]["status"] == "ok", fix["recheck"]
    assert "8001/tcp (shipyard, moved from 8000): free" in fix["recheck"]["details"]
    plan = fix["plan"]
    assert plan["summary"].startswith(
        f"move shipyard from 8000 to 8001 in {config}; stopping "
    )
    assert (
        f" (pid {holder.pid}, user root): {sys.executable} -I -c import signal, "
        "socket, sys" in plan["summary"]
    )
    assert plan["summary"].endswith(" instead would need --stop-conflicting")
    assert plan["steps"] == [f"change {config}"]
    assert plan["notes"] == [
        "the Shipyard UI moves from http://HOST:8000 to http://HOST:8001; deploy "
        "shipyard with -p 8001:8000"
    ]
    # The real effect: the file holds the port (the rest byte for byte), the port
    # can really be bound in the namespace, and the holder was left alone.
    assert config.read_bytes() == before + b"\n[stack.ports]\nshipyard = 8001\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert bindable(netns, 8001) and holder.poll() is None
    # Applying again changes nothing: the check passes, so no fix is offered.
    again = ports(netns, config, "--fix", "--yes", *no_docker(tmp_path))
    assert again["fixes"] == [] and again["checks"][0]["status"] == "ok"
    undo = run_doctor("undo", config=config)
    assert undo.code == 0, undo.stderr
    assert f"restored {config}" in undo.stdout
    assert config.read_bytes() == before
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


@pytest.fixture
def overlaid_root(require_infra, tmp_path) -> Iterator[tuple[Path, Path, Path]]:
    """A python that runs the doctor in a private mount namespace where /etc and
    /var/lib are overlays whose writes land in temp dirs: a host with no config
    file at all, and the real /etc never touched. Yields (python, etc, var_lib)
    where the last two are the upper dirs that receive the writes."""
    require_infra("unshare", "mount")
    real = Path("/etc/shipyard-doctor").exists()
    dirs = {n: tmp_path / n for n in ("etc", "etc-work", "var-lib", "var-lib-work")}
    for d in dirs.values():
        d.mkdir()
    for top, name in (
        (dirs["etc"], "shipyard-doctor"),
        (dirs["var-lib"], "shipyard-doctor"),
    ):
        # A whiteout (char device 0:0) in the upper dir hides what this machine
        # really has there, so the overlaid host has no config and no journal.
        os.mknod(top / name, stat.S_IFCHR | 0o600, os.makedev(0, 0))
    mounts = " && ".join(
        f"mount -t overlay overlay -o lowerdir={low},upperdir={dirs[up]},"
        f"workdir={dirs[up + '-work']} {low}"
        for low, up in (("/etc", "etc"), ("/var/lib", "var-lib"))
    )
    python = tmp_path / "python-overlaid"
    python.write_text(
        "#!/bin/sh\n"
        "exec unshare --mount --propagation private sh -c "
        f'\'{mounts} && exec {sys.executable} "$@"\' sh "$@"\n'
    )
    python.chmod(0o755)
    yield python, dirs["etc"], dirs["var-lib"]
    # The namespace is gone with each run; the upper dirs go with tmp_path.
    assert Path("/etc/shipyard-doctor").exists() == real


def test_no_config_file_is_created_then_removed_by_undo(
    netns, listeners, overlaid_root, tmp_path
):
    python, etc, var_lib = overlaid_root
    listeners.tcp(netns, "::", 8000, v6only=False)
    doc = ports(netns, None, "--fix", "--yes", *no_docker(tmp_path), python=str(python))
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["plan"]["steps"] == ["create /etc/shipyard-doctor/config.toml"]
    written = etc / "shipyard-doctor" / "config.toml"
    assert written.read_text() == "[stack.ports]\nshipyard = 8001\n"
    assert (var_lib / "shipyard-doctor" / "journal").is_dir()
    undo = run_doctor("undo", netns=netns, python=str(python))
    assert undo.code == 0, undo.stderr
    assert "removed /etc/shipyard-doctor/config.toml (it did not exist before)" in (
        undo.stdout
    )
    # Its new directory went too (a whiteout, not a directory, is left in the
    # upper dir where the real machine has one).
    assert not (etc / "shipyard-doctor").is_dir()


def test_a_working_deployment_is_not_removed(clean_docker_host, tmp_path):
    from test_docker_state import V1, deploy

    host = clean_docker_host
    deploy(host, {name for name, _, _ in V1})
    config, _ = write_config(tmp_path)
    doc = ports(host.netns, config, "--fix", "--yes", "--docker-host", host.dockerd.url)
    assert doc["checks"][0]["status"] == "warning"
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "nothing-to-do", fix
    assert fix["message"] == (
        "Shipyard v1 is deployed and running (it holds 80, 6379, 8000): a working "
        "deployment is not removed"
    )
    assert fix["plan"]["manual"][0].startswith("docker rm -f ")
    running = {c.name for c in host.client.containers.list()}
    assert running == {name for name, _, _ in V1}


def test_leftover_shipyard_deployment_is_removed(clean_docker_host, tmp_path):
    from test_docker_state import V1, deploy

    host = clean_docker_host
    deploy(host, {name for name, _, _ in V1})
    host.client.containers.get("shipyard_db").kill()  # the deployment is broken
    ids = {c.name: c.short_id for c in host.client.containers.list(all=True)}
    config, before = write_config(tmp_path)
    url = ("--docker-host", host.dockerd.url)
    doc = ports(host.netns, config, "--fix", "--yes", *url)
    assert doc["checks"][0]["status"] == "warning"
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["recheck"]["status"] == "ok"
    summary = fix["plan"]["summary"]
    assert summary.startswith(
        "remove the leftovers of the broken Shipyard v1 deployment ("
    )
    assert summary.endswith("), whose containers hold 80, 6379, 8000")
    named = summary.split(" (", 1)[1].split(")")[0].split(", ")
    assert sorted(named) == sorted(ids) == sorted(name for name, _, _ in V1)
    assert (
        f"remove container shipyard (image shipyard/shipyard, running, id "
        f"{ids['shipyard']})" in fix["plan"]["steps"]
    )
    # The real effect: the Docker API lists none of them; the config is untouched.
    assert host.client.containers.list(all=True) == []
    assert config.read_bytes() == before
    again = ports(host.netns, config, "--fix", "--yes", *url)
    assert again["fixes"] == [] and again["checks"][0]["status"] == "ok"


def test_stop_conflicting_stops_the_named_process(netns, listeners, tmp_path):
    holder = listeners.tcp(netns, "0.0.0.0", 8000)
    config, before = write_config(tmp_path)
    doc = ports(
        netns, config, "--fix", "--yes", "--stop-conflicting", *no_docker(tmp_path)
    )
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["recheck"]["status"] == "ok"
    assert fix["recheck"]["summary"] == "ports 80, 6379, 8000 are free"
    (step,) = fix["plan"]["steps"]
    assert step.startswith("send SIGTERM to python")
    assert f" (pid {holder.pid}, user root): {sys.executable} -I -c " in step
    assert step.endswith("; it holds 8000/tcp")
    # The real effect: that very process exited; Shipyard keeps its port.
    assert holder.wait(timeout=10) == 0
    assert bindable(netns, 8000)
    assert config.read_bytes() == before


PREFORK = r"""
import os, signal, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8000))
s.listen(16)
child = os.fork()
if child:
    print(child, flush=True)
while True:
    signal.pause()
"""


def test_a_port_still_held_after_the_fix_is_rolled_back(netns, tmp_path):
    # A pre-forked server: parent and worker share the listening socket, the check
    # names one of them. Stopping it does not free the port; the recheck says so.
    server = netns.spawn([sys.executable, "-I", "-c", PREFORK])
    worker = 0
    try:
        wait_listening(server, 8000, "0.0.0.0")
        worker = int(server.log_path.read_text().split()[0])
        config, before = write_config(tmp_path)
        doc = ports(
            netns, config, "--fix", "--yes", "--stop-conflicting", *no_docker(tmp_path)
        )
        (fix,) = doc["fixes"]
        assert fix["outcome"] == "rolled-back", fix
        assert fix["message"].startswith("rolled back: ports still failure: port 8000")
        (step,) = fix["plan"]["steps"]
        assert fix["rollback"] == [f"not reversible: {step}"]
        assert fix["recheck"]["data"]["ports"][2]["holders"][0]["pid"] in (
            server.pid,
            worker,
        )
        assert config.read_bytes() == before
    finally:
        stop_process(server)
        if worker and Path(f"/proc/{worker}").exists():
            ns = os.stat(f"/proc/{worker}/ns/net").st_ino
            if ns == netns.inode():  # still the worker we started, in our namespace
                os.kill(worker, signal.SIGKILL)
