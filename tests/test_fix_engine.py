"""The fix engine on real files and processes: plan, apply, verify, roll back, undo,
the journal's backups, and the lock between two runs."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shipyard_doctor.cli import main
from shipyard_doctor.config import Config
from shipyard_doctor.context import Environment
from shipyard_doctor.fixengine.fixrun import FixSession, Mode, Outcome
from shipyard_doctor.fixengine.journal import FixLocked, Journal
from shipyard_doctor.fixing import (
    Action,
    Fix,
    FixOptions,
    Plan,
    RunCommand,
    WriteFile,
)
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import Check, CheckRun, Result
from shipyard_doctor.registry import CheckPlugin, FixPlugin, Registry


def marker_plugins(path: Path, content: str, extra_steps=()):
    """A check that wants ``path`` to say "good", and a fix that writes ``content``."""

    class Marker(Check):
        id, title = "marker", "Marker says good"

        def run(self, host):
            try:
                text = path.read_bytes()
            except FileNotFoundError:
                return Result.failure("missing")
            if text == b"good\n":
                return Result.ok("good")
            return Result.failure(f"says {text.decode(errors='replace')!r}")

    class WriteMarker(Fix):
        id, title, repairs = "marker", "Write the marker", ("marker",)

        def plan(self, result, host, options):
            steps = (WriteFile(str(path), content), *extra_steps)
            return Plan(self.id, "marker", "write the marker", steps, risk="none")

    registry = Registry(
        checks={
            "marker": CheckPlugin(
                "marker", Marker.title, "test", (), Marker, "t", "tests"
            )
        },
        fixes={
            "marker": FixPlugin(
                "marker", WriteMarker.title, ("marker",), WriteMarker, "t", "tests"
            )
        },
    )
    return Marker, registry


def fix_once(
    registry, check, journal_dir, mode=Mode.YES, confirm=lambda p: True, direct=False
):
    def recheck(check_id):
        return CheckRun(check_id, "", "test", check().run(None))

    run = CheckRun("marker", "", "test", check().run(None))
    run = CheckRun(
        run.id,
        run.title,
        run.category,
        Result(run.result.status, run.result.summary, fixes=("marker",)),
    )
    session = FixSession(
        registry,
        Journal(str(journal_dir)),
        FixOptions(),
        mode,
        recheck,
        ["test"],
        confirm=confirm,
    )
    with session:
        if direct:  # as `shipyard-doctor fix marker` does, whatever the check said
            return [session.fix_one("marker", run, Host(Config()))]
        return session.fix_all([run], Host(Config()))


def test_dry_run_and_no_tty_change_nothing(tmp_path):
    target = tmp_path / "marker"
    check, registry = marker_plugins(target, "good\n")
    (report,) = fix_once(registry, check, tmp_path / "journal", Mode.DRY_RUN)
    assert report.outcome is Outcome.PLANNED and not target.exists()
    (report,) = fix_once(registry, check, tmp_path / "journal", Mode.NO_TTY)
    assert report.outcome is Outcome.NOT_APPLIED and not target.exists()
    (report,) = fix_once(
        registry, check, tmp_path / "journal", Mode.ASK, confirm=lambda plan: False
    )
    assert report.outcome is Outcome.DECLINED and not target.exists()
    assert not (tmp_path / "journal").exists()  # nothing applied: no journal run


def test_apply_verify_then_undo_restores_bytes_and_mode(tmp_path):
    target = tmp_path / "marker"
    original = b"bad\x00binary\xff\n"
    target.write_bytes(original)
    target.chmod(0o640)
    check, registry = marker_plugins(target, "good\n")
    journal_dir = tmp_path / "journal"
    (report,) = fix_once(registry, check, journal_dir)
    assert report.outcome is Outcome.APPLIED, report.message
    assert report.recheck.status.value == "ok"
    assert target.read_text() == "good\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file kept its mode
    run_dir = journal_dir / report.run_id
    (backup,) = (run_dir / "files").iterdir()
    assert backup.read_bytes() == original
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700

    run_id, lines = Journal(str(journal_dir)).undo(None, ["undo"])
    assert run_id == report.run_id and lines == [f"restored {target}"]
    assert target.read_bytes() == original
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_file_and_its_new_dirs_are_removed_by_undo(tmp_path):
    target = tmp_path / "a" / "b" / "marker"
    check, registry = marker_plugins(target, "good\n")
    (report,) = fix_once(registry, check, tmp_path / "journal")
    assert report.outcome is Outcome.APPLIED and target.exists()
    Journal(str(tmp_path / "journal")).undo(report.run_id, ["undo"])
    assert not (tmp_path / "a").exists()


def test_second_apply_is_a_no_op(tmp_path):
    target = tmp_path / "marker"
    target.write_text("good\n")
    check, registry = marker_plugins(target, "good\n")
    assert fix_once(registry, check, tmp_path / "journal") == []  # ok: not offered
    # Even run by hand, a step already in place is not applied again.
    (report,) = fix_once(registry, check, tmp_path / "journal", direct=True)
    assert report.outcome is Outcome.NOTHING_TO_DO
    assert not (tmp_path / "journal").exists()


def test_a_fix_that_does_not_verify_is_rolled_back(tmp_path):
    target = tmp_path / "marker"
    target.write_text("bad\n")
    check, registry = marker_plugins(target, "still bad\n")
    (report,) = fix_once(registry, check, tmp_path / "journal")
    assert report.outcome is Outcome.ROLLED_BACK
    assert report.message == "rolled back: marker still failure: says 'still bad\\n'"
    assert target.read_text() == "bad\n"
    assert report.rollback == [f"restored {target}"]


def test_a_failing_step_rolls_back_the_steps_before_it(tmp_path):
    target = tmp_path / "marker"
    target.write_text("bad\n")
    failing = RunCommand(("false",), "a command that fails")
    check, registry = marker_plugins(target, "good\n", extra_steps=(failing,))
    (report,) = fix_once(registry, check, tmp_path / "journal")
    assert report.outcome is Outcome.FAILED
    assert report.message == "false exited 1; rolled back"
    assert target.read_text() == "bad\n"


def test_undo_runs_inverses_and_lists_what_it_cannot_reverse(tmp_path):
    target, flag = tmp_path / "marker", tmp_path / "flag"
    steps = (
        RunCommand(("touch", str(flag)), "make a flag", inverse=("rm", str(flag))),
        RunCommand(("true",), "something one-way"),
        Action("removed container old_shipyard", run=lambda: None),
    )
    check, registry = marker_plugins(target, "good\n", extra_steps=steps)
    (report,) = fix_once(registry, check, tmp_path / "journal")
    assert report.outcome is Outcome.APPLIED and flag.exists()
    _, lines = Journal(str(tmp_path / "journal")).undo(None, ["undo"])
    assert lines == [
        "not reversible: removed container old_shipyard",
        "not reversible: true (something one-way)",
        f"ran: rm {flag}",
        f"removed {target} (it did not exist before)",
    ]
    assert not flag.exists()
    with pytest.raises(Exception, match="no fix run to undo"):
        Journal(str(tmp_path / "journal")).undo(None, ["undo"])


HOLD = """
import sys, time
from shipyard_doctor.fixengine.journal import Journal
with Journal(sys.argv[1]).lock(["shipyard-doctor", "check", "--fix"]):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_a_second_fix_run_is_refused_and_told_who_holds_the_lock(tmp_path):
    journal_dir = tmp_path / "journal"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(journal_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(
                FixLocked,
                match=rf"pid {holder.pid}: shipyard-doctor check"
                r" --fix, since",
            ),
            Journal(str(journal_dir)).run(["x"]),
        ):
            pass
        assert not [p for p in journal_dir.iterdir() if p.name != "lock"]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    deadline = time.monotonic() + 5
    while True:  # the lock is free again once its holder is gone
        try:
            with Journal(str(journal_dir)).run(["x"]):
                break
        except FixLocked:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_undo_cli(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[fix]\njournal_dir = '{tmp_path / 'journal'}'\n")
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ={})
    assert main(["undo", "--list", "--config", str(config)], env) == 0
    assert out.getvalue() == f"no fix runs recorded in {tmp_path / 'journal'}\n"
    assert main(["undo", "--config", str(config)], env) == 1
    assert err.getvalue().strip() == (
        f"shipyard-doctor: error: no fix run to undo in {tmp_path / 'journal'}"
    )
    assert main(["fix", "nope", "--config", str(config)], env) == 2
    assert "unknown fix id 'nope'" in err.getvalue()


def test_journal_dir_that_cannot_be_created_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with (
        pytest.raises(
            Exception,
            match=r"cannot use the fix journal .*set \[fix\] "
            r"journal_dir",
        ),
        Journal(str(blocker / "journal")).run(["x"]),
    ):
        pass
    assert os.path.isfile(blocker)


def test_a_step_failing_with_an_os_error_is_reported_and_rolled_back(tmp_path):
    # The step writes below a regular *file*: creating its directory fails for real
    # (EEXIST from makedirs), for root as for anyone, as a read-only mount would.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    first = tmp_path / "marker"
    first.write_text("bad\n")
    check, registry = marker_plugins(
        first, "good\n", extra_steps=(WriteFile(str(blocker / "x.conf"), "x\n"),)
    )
    (report,) = fix_once(registry, check, tmp_path / "journal")
    assert report.outcome is Outcome.FAILED
    assert report.message == (
        f"create {blocker / 'x.conf'}: File exists {blocker}; rolled back"
    )
    assert first.read_text() == "bad\n"  # the step before it was rolled back


def test_preview_marks_a_missing_final_newline(tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text('{\n  "hosts": []\n}')  # as many editors leave it
    preview = WriteFile(str(target), '{\n  "hosts": ["x"]\n}\n').preview()
    assert "-}\n\\ No newline at end of file\n" in preview
    assert preview.endswith("+}\n")
    assert all(line.endswith("\n") for line in preview.splitlines(keepends=True))
