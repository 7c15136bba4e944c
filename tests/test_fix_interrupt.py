"""The fix engine when things go wrong for real: a read-only bind mount, a non-root
run, a full disk under the journal, a restart command that times out, and a real
`shipyard-doctor fix --yes` process interrupted (SIGINT, SIGTERM) or killed
(SIGKILL) while its restart command runs; then `undo`.

The fix is the third-party example plugin's (tests/data/plugin-pkg): it writes
"good" into $SD_EXAMPLE_MARKER and, when ``[docker] restart_command`` is set, runs
it (here: a script that sleeps, with a child, in its own process group)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from doctor_cli import SETPRIV, install_example_plugin
from shipyard_doctor.fixengine.fixrun import Outcome
from shipyard_doctor.fixing import RunCommand
from test_fix_engine import fix_once, marker_plugins

ORIGINAL = "bad: the marker as the user left it\n"
REPORT = "fix example-marker (example-marker): "  # the report's line, not the plan's


@pytest.fixture(scope="module")
def plugin_dir() -> Iterator[Path]:
    """The example plugin pip-installed into a world-readable dir."""
    target = world_readable_dir()
    try:
        install_example_plugin(target)
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


def world_readable_dir() -> Path:
    """/tmp/sdt-e<pid>-XXXX (the suite's reaper knows the owner), mode 0755."""
    path = Path(tempfile.mkdtemp(prefix=f"sdt-e{os.getpid()}-", dir="/tmp"))
    path.chmod(0o755)
    return path


def write_config(where: Path, journal: Path, restart: str = "") -> Path:
    config = where / "config.toml"
    config.write_text(
        f'[fix]\njournal_dir = "{journal}"\n[docker]\nrestart_command = "{restart}"\n'
    )
    config.chmod(0o644)
    return config


def doctor_argv(python: str, config: Path, *args: str) -> list[str]:
    return [python, "-m", "shipyard_doctor", *args, "--config", str(config)]


def doctor_env(plugin_dir: Path, marker: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": str(plugin_dir),
        "SD_EXAMPLE_MARKER": str(marker),
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }


def run_doctor(
    plugin_dir: Path,
    marker: Path,
    config: Path,
    *args: str,
    python: str = sys.executable,
    as_nobody: bool = False,
) -> subprocess.CompletedProcess[str]:
    argv = doctor_argv(python, config, *args)
    return subprocess.run(
        [*SETPRIV, *argv] if as_nobody else argv,
        env=doctor_env(plugin_dir, marker),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manifests(journal: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(journal.glob("*/manifest.json"))]


def leftovers(*dirs: Path) -> list[Path]:
    """Temporary files the doctor may have left: manifest.tmp, *.shipyard-doctor.*"""
    found = []
    for directory in dirs:
        for path in directory.rglob("*"):
            if path.name.endswith(".tmp") or ".shipyard-doctor." in path.name:
                found.append(path)
    return found


def assert_failed_cleanly(done, marker: Path, journal: Path, reason: str) -> None:
    """Exit 1, the reason on the fix's line naming the file, the original intact,
    the run ended (not left applying), no temporary files, no traceback."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith(REPORT)]
    assert line.startswith("fix example-marker (example-marker): failed -- ")
    assert reason in line and line.endswith("; rolled back"), line
    assert marker.read_text() == ORIGINAL
    (run,) = manifests(journal)
    assert [f["status"] for f in run["fixes"]] == ["failed"]
    assert leftovers(journal, marker.parent) == []


# -- a write that fails --------------------------------------------------------


class BindMount:
    """A temp dir bind-mounted onto itself, to be made read-only and writable."""

    def __init__(self, directory: Path):
        self.directory = directory

    def remount(self, mode: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{mode},bind", self.directory],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def bind_mount(tmp_path: Path, require_infra) -> Iterator[BindMount]:
    """A temp dir with the marker in it, bind-mounted onto itself (writable)."""
    require_infra("mount", "umount")
    directory = tmp_path / "etc-like"
    directory.mkdir()
    (directory / "marker").write_text(ORIGINAL)
    subprocess.run(["mount", "--bind", directory, directory], check=True)
    try:
        yield BindMount(directory)
    finally:
        subprocess.run(["umount", directory], check=True)


@pytest.fixture
def read_only_dir(bind_mount: BindMount) -> Path:
    bind_mount.remount("ro")
    return bind_mount.directory


def test_a_write_on_a_read_only_bind_mount_fails_cleanly(
    read_only_dir, tmp_path, plugin_dir
):
    marker, journal = read_only_dir / "marker", tmp_path / "journal"
    config = write_config(tmp_path, journal)
    done = run_doctor(plugin_dir, marker, config, "fix", "example-marker", "--yes")
    assert_failed_cleanly(
        done, marker, journal, f"change {marker}: Read-only file system {marker}"
    )
    assert f"    {marker} unchanged" in done.stdout.splitlines()


def test_undo_that_cannot_write_keeps_the_run_and_the_file(
    bind_mount, tmp_path, plugin_dir
):
    marker, journal = bind_mount.directory / "marker", tmp_path / "journal"
    config = write_config(tmp_path, journal)
    done = run_doctor(plugin_dir, marker, config, "fix", "example-marker", "--yes")
    assert done.returncode == 0 and marker.read_text() == "good\n", done.stdout
    bind_mount.remount("ro")
    done = run_doctor(plugin_dir, marker, config, "undo")
    assert done.returncode == 1, (done.stdout, done.stderr)
    (run,) = manifests(journal)
    assert done.stderr == (
        f"shipyard-doctor: error: could not undo fix run {run['run']} completely: "
        f"FAILED to restore {marker}: Read-only file system (the original is kept "
        f"in {journal / run['run'] / 'files' / '0000'}); fix that, then run undo "
        "again\n"
    )
    assert marker.read_text() == "good\n"  # not removed before it could be restored
    assert not run["undone"] and [f["status"] for f in run["fixes"]] == ["applied"]
    bind_mount.remount("rw")
    done = run_doctor(plugin_dir, marker, config, "undo")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert marker.read_text() == ORIGINAL
    assert leftovers(journal, marker.parent) == []


def test_a_write_without_permission_fails_cleanly_as_nobody(
    unprivileged_venv, plugin_dir
):
    # World-searchable dirs: nobody reads the marker and config, writes the journal.
    # The plugin is pure Python: installed by this interpreter, imported by nobody's.
    base, plugin = world_readable_dir(), plugin_dir
    try:
        owned = base / "etc-like"  # root's, 0755: nobody cannot write in it
        owned.mkdir(mode=0o755)
        marker = owned / "marker"
        marker.write_text(ORIGINAL)
        marker.chmod(0o644)
        journal = base / "journal"
        journal.mkdir()
        shutil.chown(journal, "nobody", "nogroup")
        config = write_config(base, journal)
        done = run_doctor(
            plugin,
            marker,
            config,
            "fix",
            "example-marker",
            "--yes",
            python=str(unprivileged_venv / "bin" / "python"),
            as_nobody=True,
        )
        assert_failed_cleanly(
            done, marker, journal, f"change {marker}: Permission denied {marker}"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- a full disk under the journal -----------------------------------------------


@pytest.fixture
def small_journal(tmp_path: Path, require_infra) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted on a temp dir, as the journal dir."""
    require_infra("mount", "umount")
    journal = tmp_path / "journal"
    journal.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "sdt-journal", journal],
        check=True,
    )
    try:
        yield journal
    finally:
        subprocess.run(["umount", journal], check=True)


def test_a_backup_that_does_not_fit_changes_nothing(
    small_journal, tmp_path, plugin_dir
):
    marker = tmp_path / "marker"
    big = ORIGINAL + "x" * 200_000 + "\n"  # more than the journal can hold
    marker.write_text(big)
    config = write_config(tmp_path, small_journal)
    done = run_doctor(plugin_dir, marker, config, "fix", "example-marker", "--yes")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr == ""
    (line,) = [x for x in done.stdout.splitlines() if x.startswith(REPORT)]
    assert f"change {marker}: cannot back up {marker} into the fix journal " in line
    assert f"({small_journal}/" in line and "No space left on device" in line
    assert line.endswith("; rolled back")
    assert marker.read_text() == big
    (run,) = manifests(small_journal)
    assert [f["status"] for f in run["fixes"]] == ["failed"]
    assert leftovers(small_journal, tmp_path) == []
    assert not any((small_journal / run["run"] / "files").iterdir())


def test_a_full_journal_is_one_line_naming_it(small_journal, tmp_path, plugin_dir):
    filler = small_journal / "filler"
    with (
        open(filler, "wb", buffering=0) as out,
        pytest.raises(OSError, match="No space left on device"),
    ):
        while True:
            out.write(b"\0" * 4096)
    marker = tmp_path / "marker"
    marker.write_text(ORIGINAL)
    config = write_config(tmp_path, small_journal)
    done = run_doctor(plugin_dir, marker, config, "fix", "example-marker", "--yes")
    assert done.returncode == 1, (done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"shipyard-doctor: error: cannot write the fix journal {small_journal}/"
    )
    assert "No space left on device" in line
    assert marker.read_text() == ORIGINAL
    assert sorted(p.name for p in small_journal.iterdir()) == ["filler", "lock"]


# -- commands in their own process group -------------------------------------------


def process_alive(pid: int) -> bool:
    """``pid`` runs (a zombie does not: pid 1 here may be slow to reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    """A live (not zombie) process is in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def wait_until(condition, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_command_that_times_out_is_stopped_with_its_whole_group(tmp_path):
    target, pidfile = tmp_path / "marker", tmp_path / "child"
    target.write_text("bad\n")
    slow = RunCommand(
        ("sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"),
        "a restart that hangs",
        timeout=1,
    )
    check, registry = marker_plugins(target, "good\n", extra_steps=(slow,))
    started = time.monotonic()
    (report,) = fix_once(registry, check, tmp_path / "journal")
    assert time.monotonic() - started < 10
    assert report.outcome is Outcome.FAILED
    assert report.message.startswith("sh -c ") and report.message.endswith(
        "did not finish: timed out after 1 s; rolled back"
    )
    assert target.read_text() == "bad\n"
    child = int(pidfile.read_text())
    wait_until(lambda: not process_alive(child), "the sleep to be gone")


SLEEPER = """#!/bin/sh
# A restart that takes its time, with a child of its own.
sleep 60 &
echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}
wait
"""


@pytest.fixture
def interrupted_fix(tmp_path: Path, plugin_dir: Path):
    """Start `fix example-marker --yes` whose restart command sleeps; yield the
    process, the restart's process group and the paths, once the restart runs."""
    marker, journal, pidfile = (
        tmp_path / "marker",
        tmp_path / "journal",
        tmp_path / "pid",
    )
    marker.write_text(ORIGINAL)
    marker.chmod(0o640)
    script = tmp_path / "restart"
    script.write_text(SLEEPER.format(pidfile=pidfile))
    script.chmod(0o755)
    config = write_config(tmp_path, journal, restart=str(script))
    process = subprocess.Popen(
        doctor_argv(sys.executable, config, "fix", "example-marker", "--yes"),
        env=doctor_env(plugin_dir, marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pgid = None
    try:
        wait_until(pidfile.exists, "the restart command to run", seconds=60)
        pgid = os.getpgid(int(pidfile.read_text()))
        assert pgid != os.getpgid(process.pid)  # a process group of its own
        yield process, pgid, marker, journal, config
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        if pgid is not None and group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def undo_restores_the_marker(plugin_dir, marker, journal, config) -> str:
    (run,) = manifests(journal)
    assert [f["status"] for f in run["fixes"]] == ["applying"]
    assert marker.read_text() == "good\n"  # the write happened before the restart
    done = run_doctor(plugin_dir, marker, config, "undo")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.startswith(f"undid fix run {run['run']}\n")
    assert f"  restored {marker}\n" in done.stdout
    assert marker.read_text() == ORIGINAL
    assert stat.S_IMODE(marker.stat().st_mode) == 0o640
    (run,) = manifests(journal)
    assert run["undone"] and [f["status"] for f in run["fixes"]] == ["undone"]
    return done.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_fix_stops_its_command_and_can_be_undone(
    interrupted_fix, plugin_dir, signum
):
    process, pgid, marker, journal, config = interrupted_fix
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith(
        "shipyard-doctor: interrupted; fix example-marker was stopped while applying:"
        " `shipyard-doctor undo "
    )
    wait_until(lambda: not group_alive(pgid), "the restart's process group to stop")
    undo_restores_the_marker(plugin_dir, marker, journal, config)


def test_a_killed_fix_takes_its_command_along_and_can_be_undone(
    interrupted_fix, plugin_dir
):
    process, pgid, marker, journal, config = interrupted_fix
    process.kill()  # SIGKILL: no chance to clean up
    process.communicate(timeout=30)
    wait_until(lambda: not group_alive(pgid), "the restart's process group to stop")
    undo_restores_the_marker(plugin_dir, marker, journal, config)


def test_undo_stops_what_an_interrupted_command_left_running(tmp_path):
    # As after a crash that took nothing along: a journalled command "started"
    # whose process group (a real one, with a child) still runs.
    from shipyard_doctor.fixengine.journal import Journal

    marker = tmp_path / "marker"
    marker.write_text(ORIGINAL)
    journal = Journal(str(tmp_path / "journal"))
    group = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        with pytest.raises(KeyboardInterrupt), journal.run(["test"]) as run:
            run.begin_fix("example-marker", "example-marker")
            run.backup(str(marker))
            marker.write_text("good\n")
            with run.command(["restart"], None, "take effect") as record:
                record.started(group.pid)
                raise KeyboardInterrupt
        assert group_alive(group.pid)
        _, lines = journal.undo(None, ["undo"])
        assert lines == [
            f"stopped process group {group.pid} of the interrupted restart",
            "not reversible: restart (take effect)",
            f"restored {marker}",
        ]
        assert not group_alive(group.pid) and marker.read_text() == ORIGINAL
    finally:
        if group_alive(group.pid):
            os.killpg(group.pid, signal.SIGKILL)
        group.wait()
