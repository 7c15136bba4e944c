"""`check` (and `check --fix --dry-run`) write nothing: every file under the dirs the
doctor reads and the ones fixes would write -- its config dir, the journal, an
/etc/docker, the systemd unit dirs, the DHCP lease dirs, the agent's lib dir -- has
the same bytes (sha256), mode and mtime after a full check on a real test host (a
namespace with its own dockerd and a running container) as before."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from doctor_cli import run_doctor

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.infra

Snapshot = dict[str, tuple[str, int, int, str]]


def snapshot(*tops: Path) -> Snapshot:
    """relative path -> (kind, mode, mtime_ns, sha256 or link target) of every entry,
    the top dirs included (a file created or removed changes their mtime too)."""
    seen: Snapshot = {}
    for top in tops:
        for root, dirs, names in os.walk(top):
            for name in [".", *dirs, *names]:
                path = Path(root) / name if name != "." else Path(root)
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    kind, content = "link", os.readlink(path)
                elif stat.S_ISREG(info.st_mode):
                    kind = "file"
                    content = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    kind, content = "dir", ""
                key = str(path)
                seen[key] = (kind, info.st_mode, info.st_mtime_ns, content)
    return seen


def test_check_writes_nothing(clean_docker_host, tmp_path):
    host = clean_docker_host
    host.client.containers.run(host.image, ["sleep", "3600"], name="web", detach=True)

    config_dir = tmp_path / "etc-shipyard-doctor"
    journal = tmp_path / "journal"
    etc_docker = tmp_path / "etc-docker"
    units = tmp_path / "systemd"
    leases = tmp_path / "leases"
    lib_dir = tmp_path / "opt-shipyard-lib"
    for d in (config_dir, journal, etc_docker, leases, lib_dir):
        d.mkdir()
    shutil.copytree(DATA / "systemd" / "debian" / "lib" / "systemd" / "system", units)
    (etc_docker / "daemon.json").write_text(json.dumps({"log-level": "info"}))
    shutil.copy(DATA / "dhcp" / "dhclient.leases", leases / "dhclient.eth0.leases")
    (journal / "README").write_text("an earlier run's journal would be here\n")
    config = config_dir / "config.toml"
    config.write_text(
        "[docker]\n"
        f'daemon_json = "{etc_docker}/daemon.json"\n'
        f"[host]\n"
        f'systemd_dirs = ["{units}"]\n'
        f'lease_dirs = ["{leases}"]\n'
        f'lib_dirs = ["{lib_dir}"]\n'
        f'ld_so_conf_dir = "{tmp_path}/ld.so.conf.d"\n'
        f"[agent]\n"
        f'lib_dir = "{lib_dir}"\n'
        f"[fix]\n"
        f'journal_dir = "{journal}"\n'
    )
    tops = (config_dir, journal, etc_docker, units, leases, lib_dir)
    before = snapshot(*tops)
    assert len(before) > 10, before  # the snapshot sees the files it guards

    runs = [
        run_doctor(
            "check",
            "--json",
            "--docker-host",
            host.dockerd.url,
            netns=host.netns,
            config=config,
        ),
        run_doctor(
            "check",
            "-v",
            "--docker-host",
            host.dockerd.url,
            netns=host.netns,
            config=config,
        ),
        run_doctor(
            "check",
            "--fix",
            "--dry-run",
            "--docker-host",
            host.dockerd.url,
            netns=host.netns,
            config=config,
        ),
    ]
    for run in runs:
        assert run.code in (0, 1, 3), run.stderr
        assert "internal error" not in run.stderr, run.stderr
    assert "docker-daemon" in runs[0].stdout

    after = snapshot(*tops)
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()}
    changed = {k: v for k, v in changed.items() if v[0] != v[1]}
    assert not changed, changed
    # The namespace's dockerd still runs the container the check looked at.
    assert host.client.containers.get("web").status == "running"
