"""lib-readonly on real mounts, and the mountinfo parser on recorded and live tables.

A read-only bind mount of a temp dir (named with a space, so mountinfo escapes it as
\\040) stands in for a read-only library dir; a private mount namespace with /usr
bind-remounted read-only stands in for CoreOS. Recorded tables are in
tests/data/mountinfo/: this Debian 12 dev machine's, and one taken while such a
read-only bind mount and a tmpfs on a dir named "back\\slash" existed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from doctor_cli import run_doctor
from infra import missing
from shipyard_doctor.host.mounts import (
    mount_for,
    parse_mountinfo,
    read_mountinfo,
    unescape,
)

DATA = Path(__file__).parent / "data" / "mountinfo"


@pytest.fixture
def ro_bind(require_infra, tmp_path):
    """TMP/ro libs: a read-only bind mount of TMP/libs; unmounted even on failure."""
    require_infra("mount", "umount")
    source, target = tmp_path / "libs", tmp_path / "ro libs"
    source.mkdir()
    target.mkdir()
    subprocess.run(["mount", "--bind", source, target], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
        yield source, target
    finally:
        subprocess.run(["umount", target], check=True)


def _config(tmp_path: Path, lib_dirs: list[Path], lib_dir: Path) -> Path:
    config = tmp_path / "config.toml"
    dirs = ", ".join(f'"{d}"' for d in lib_dirs)
    config.write_text(f'[agent]\nlib_dir = "{lib_dir}"\n[host]\nlib_dirs = [{dirs}]\n')
    return config


def test_read_only_lib_dir_is_named_with_its_mount(ro_bind, tmp_path):
    source, target = ro_bind
    lib_dir = tmp_path / "opt" / "shipyard" / "lib"
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "lib-readonly",
        config=_config(tmp_path, [target], lib_dir),
    )
    check = run.check("lib-readonly")
    assert check["status"] == "warning", check
    assert check["summary"] == (
        f"{target} read-only; the agent-libs fix uses {lib_dir} instead"
    )
    (entry,) = [d for d in check["data"]["lib_dirs"] if d["path"] == str(target)]
    assert entry["read_only"] is True and entry["mount"] == str(target)
    assert f"library dir {target}: read-only on {target} (" in "\n".join(
        check["details"]
    )
    assert f" {source} of " in "\n".join(check["details"])  # the bind's source
    assert check["data"]["lib_dir"]["writable"] is True
    assert any(f"LD_LIBRARY_PATH={lib_dir}" in h for h in check["hints"])
    # The live table shows the mount point with its space (written as \040).
    live = read_mountinfo()
    assert mount_for(str(target / "x"), live).mount_point == str(target)


def test_read_only_lib_dir_without_a_writable_route_fails(ro_bind, tmp_path):
    _, target = ro_bind
    lib_dir = target / "shipyard" / "lib"  # would be created on the ro mount
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "lib-readonly",
        config=_config(tmp_path, [target], lib_dir),
    )
    check = run.check("lib-readonly")
    assert run.code == 1 and check["status"] == "failure", check
    assert check["summary"] == (
        f"{target} and the agent's lib_dir {lib_dir} are read-only: no place for a "
        "library the agent needs"
    )
    assert f"(missing; nearest existing parent {target})" in "\n".join(check["details"])


def test_writable_dirs_are_ok(tmp_path):
    if not os.access("/usr/lib", os.W_OK):
        missing("a writable /usr/lib (a Debian-like root), to show the healthy case")
    libs = tmp_path / "libs"
    libs.mkdir()
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "lib-readonly",
        config=_config(tmp_path, [libs], tmp_path / "lib"),
    )
    check = run.check("lib-readonly")
    assert check["status"] == "ok", check
    assert check["summary"].startswith("the library dirs are writable (")
    assert str(libs) in check["summary"]


def test_read_only_usr_is_recognised_as_coreos(require_infra, tmp_path):
    # CoreOS in a private mount namespace: /usr bind-remounted read-only, with
    # /lib64 → usr/lib64 as on every merged-/usr system (and on CoreOS).
    require_infra("unshare", "mount")
    if not os.path.realpath("/lib64").startswith("/usr/"):
        missing("/lib64 as a symlink into /usr (a merged-/usr root such as Debian 12)")
    python = tmp_path / "python"
    python.write_text(
        "#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind "
        '/usr /usr && mount -o remount,bind,ro /usr && exec "$@"\' sh '
        f'{sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    lib_dir = tmp_path / "opt" / "shipyard" / "lib"
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "lib-readonly",
        config=_config(tmp_path, [], lib_dir),
        python=str(python),
    )
    check = run.check("lib-readonly")
    assert check["status"] == "warning", run.stdout + run.stderr
    assert check["summary"] == (
        f"/usr is read-only (CoreOS/Flatcar design): never remount it; use {lib_dir}"
    )
    assert check["data"]["coreos"].startswith("read-only /usr (")
    assert os.access("/usr", os.W_OK)  # the namespace is gone, /usr untouched


def test_recorded_mountinfo_of_this_machine():
    mounts = parse_mountinfo((DATA / "debian12-container.txt").read_text())
    assert len(mounts) == 23
    root = mount_for("/usr/lib/x86_64-linux-gnu", mounts)
    assert (root.mount_point, root.fs_type, root.source) == ("/", "ext4", "/dev/vda")
    assert not root.read_only
    cpu = mount_for("/sys/fs/cgroup/cpu/tasks", mounts)
    assert (cpu.fs_type, cpu.super_options) == ("cgroup", ("rw", "cpu"))
    # /dev/pts is mounted twice: the later mount (id 29) is the one on top.
    assert mount_for("/dev/pts/0", mounts).mount_id == 29
    sandbox = mount_for("/mnt/sandboxing/model_tools_env/v1/python/x", mounts)
    assert sandbox.read_only and sandbox.options[0] == "ro"
    netns = mount_for("/run/netns/a", mounts)
    assert netns.root == "/run/netns" and netns.optional == ("shared:1",)


def test_recorded_mountinfo_with_ro_bind_and_escapes():
    mounts = parse_mountinfo((DATA / "ro-bind-and-escapes.txt").read_text())
    ro = mount_for("/tmp/sdt-rec3152-h0Rz/ro lib/libz.so.1", mounts)
    assert ro.mount_point == "/tmp/sdt-rec3152-h0Rz/ro lib"
    assert ro.root == "/tmp/sdt-rec3152-h0Rz/lib"
    assert ro.read_only and "rw" in ro.super_options  # per-mount ro, rw filesystem
    slash = mount_for("/tmp/sdt-rec3152-h0Rz/back\\slash", mounts)
    assert (slash.fs_type, slash.source) == ("tmpfs", "sdt-tmpfs")
    assert unescape(r"a\040b\011c\012d\134e") == "a b\tc\nd\\e"
    assert mount_for("/tmp/sdt-rec3152-h0Rz/lib", mounts).mount_point == "/"


def test_live_mountinfo_matches_findmnt():
    out = subprocess.run(
        ["findmnt", "--json", "--list", "-o", "TARGET,FSTYPE,OPTIONS"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        missing("a usable findmnt: apt-get install util-linux")

    # Tests running alongside add and remove namespace and temp mounts: leave those.
    def stable(target: str) -> bool:
        return not target.startswith(("/run/netns/", "/tmp/"))

    filesystems = json.loads(out.stdout)["filesystems"]
    theirs = [(m["target"], m["fstype"]) for m in filesystems if stable(m["target"])]
    live = read_mountinfo()
    mine = [(m.mount_point, m.fs_type) for m in live if stable(m.mount_point)]
    assert sorted(mine) == sorted(theirs)
