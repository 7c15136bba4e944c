"""Host facts that need a real process to find."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from shipyard_doctor.config import Config
from shipyard_doctor.host import commands
from shipyard_doctor.host.gateway import Host


def test_finds_a_2014_style_docker_daemon(tmp_path):
    # Docker < 1.8 ran its daemon as `docker -d` (the story's CoreOS unit). A copy of
    # Debian's python named "docker" run with -d (accepted and ignored by release
    # builds) is a real process with exactly that name and command line.
    fake_docker = tmp_path / "docker"
    shutil.copy("/usr/bin/python3", fake_docker)
    daemon = subprocess.Popen(
        [str(fake_docker), "-d", "-c", "import time; time.sleep(30)"]
    )
    client = subprocess.Popen([str(fake_docker), "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pids = {p.pid for p in Host(Config()).dockerd_processes()}
            if daemon.pid in pids:
                break
            time.sleep(0.05)
        assert daemon.pid in pids
        assert client.pid not in pids  # `docker` without -d is the client
    finally:
        for proc in (daemon, client):
            proc.kill()
            proc.wait()


def test_process_names_are_psutils_even_where_the_kernel_cut_them(tmp_path):
    # The kernel keeps 15 characters of a name (systemd-networkd is
    # "systemd-network" in /proc/PID/comm); the scan names it as psutil and ps do.
    # A real process with a long name, and every process of this machine, compared.
    import psutil
    from shipyard_doctor.host import processes

    long_name = tmp_path / "shipyard-doctor-long-process-name"
    shutil.copy("/bin/sleep", long_name)
    proc = subprocess.Popen([str(long_name), "30"])
    try:
        # Popen may return before the kernel has renamed the child (vfork: the
        # parent runs on once the child's memory is replaced, a moment before its
        # comm is set); wait for the new name.
        deadline = time.monotonic() + 5
        comm = Path(f"/proc/{proc.pid}/comm")
        while comm.read_text().strip() != "shipyard-doctor":
            assert time.monotonic() < deadline, "the child never became sleep"
            time.sleep(0.01)
        mine = dict(processes.names())
        theirs = {p.pid: p.info["name"] for p in psutil.process_iter(["name"])}
        assert mine[proc.pid] == "shipyard-doctor-long-process-name"
        both = set(mine) & set(theirs)
        assert len(both) > 0.9 * len(theirs)  # only processes that came or went
        differ = {p for p in both if mine[p] != theirs[p]}
        # A process that exec'd between the two scans (other tests run on this
        # machine) has a new name: only a difference that stays counts.
        again = dict(processes.names())
        still = {}
        for pid in differ:
            now = _psutil_name(pid)
            if pid in again and now is not None and again[pid] != now:
                still[pid] = (again[pid], now)
        assert not still
    finally:
        proc.kill()
        proc.wait()


def test_process_details_are_psutils_and_a_zombie_has_none():
    # Host.process reads /proc itself; what it reads must be what psutil says, for
    # every process of this machine, and a zombie (an exited child not yet reaped,
    # e.g. a dhclient another program left behind) is no process to report.
    import psutil
    from shipyard_doctor.host import processes

    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert processes.details(zombie.pid) is None
        compared = 0
        for proc in psutil.process_iter():
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    expected = (proc.name(), tuple(proc.cmdline()), proc.uids().real)
            except psutil.Error:
                continue  # exited meanwhile
            found = processes.details(proc.pid)
            if found is not None and found != expected:  # or it exec'd meanwhile
                expected = _psutil_details(proc.pid)
                found = processes.details(proc.pid)
            if found is not None and expected is not None:
                assert found == expected, proc.pid
                compared += 1
        assert compared > 10
    finally:
        zombie.wait()


def _psutil_name(pid: int) -> str | None:
    import psutil

    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None


def _psutil_details(pid: int) -> tuple[str, tuple[str, ...], int] | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return (proc.name(), tuple(proc.cmdline()), proc.uids().real)
    except psutil.Error:
        return None


def test_which_finds_what_shutil_which_finds(tmp_path, monkeypatch):
    path = os.environ.get("PATH", "") + ":" + commands.SYSTEM_PATH
    for name in (
        "sh",
        "ls",
        "iptables-save",
        "ip",
        "dockerd",
        "no-such-tool",
        "/bin/sh",
    ):
        assert commands.which(name, path) == shutil.which(name, path=path), name
    # a directory and a file without an execute bit are no programs; an empty entry
    # is not the current directory
    (tmp_path / "tool").mkdir()
    (tmp_path / "plain").write_text("#!/bin/sh\n")
    runnable = tmp_path / "bin" / "runnable"
    runnable.parent.mkdir()
    runnable.write_text("#!/bin/sh\n")
    runnable.chmod(0o755)
    (tmp_path / "runnable").write_text("#!/bin/sh\n")
    (tmp_path / "runnable").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert commands.which("tool", f"{tmp_path}") is None
    assert commands.which("plain", f"{tmp_path}") is None
    assert commands.which("runnable", f":{runnable.parent}") == str(runnable)
    assert shutil.which("runnable", path=f":{runnable.parent}") == "runnable"  # cwd
    assert commands.which("runnable", "") is None
