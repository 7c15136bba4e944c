"""Host facts that need a real process to find."""

from __future__ import annotations

import shutil
import subprocess
import time

from shipyard_doctor.config import Config
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
        mine = dict(processes.names())
        theirs = {p.pid: p.info["name"] for p in psutil.process_iter(["name"])}
        assert mine[proc.pid] == "shipyard-doctor-long-process-name"
        with open(f"/proc/{proc.pid}/comm") as comm:
            assert comm.read().strip() == "shipyard-doctor"  # what the kernel keeps
        both = set(mine) & set(theirs)
        assert len(both) > 0.9 * len(theirs)  # only processes that came or went
        assert {p: mine[p] for p in both} == {p: theirs[p] for p in both}
    finally:
        proc.kill()
        proc.wait()
