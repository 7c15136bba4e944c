"""The runner isolates every check: crashes, hangs, bad returns and unmet dependencies
become results, and the run always finishes."""

from __future__ import annotations

import threading
import time

from shipyard_doctor.config import Config
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import Check, Result, Status
from shipyard_doctor.registry import BrokenPlugin, CheckPlugin, FixPlugin, Registry
from shipyard_doctor.runner import Selection, order_checks, run_checks


class Passes(Check):
    id, title = "passes", "Passes"

    def run(self, host):
        return Result.ok("fine")


class Fails(Check):
    id, title = "fails", "Fails"

    def run(self, host):
        return Result.failure("broken", hints=["do this"])


class Crashes(Check):
    id, title = "crashes", "Crashes"

    def run(self, host):
        raise ValueError("boom")


class Hangs(Check):
    id, title = "hangs", "Hangs"
    release = threading.Event()

    def run(self, host):
        self.release.wait(30)
        return Result.ok("woke up")


class ReturnsJunk(Check):
    id, title = "junk", "Junk"

    def run(self, host):
        return {"status": "ok"}


class NeedsFails(Check):
    id, title, requires = "needs-fails", "Needs fails", ("fails",)

    def run(self, host):  # pragma: no cover - must never run
        raise AssertionError("ran although its dependency failed")


class NeedsPasses(Check):
    id, title, requires = "needs-passes", "Needs passes", ("passes",)

    def run(self, host):
        return Result.ok("dependency passed")


class NeedsMissing(Check):
    id, title, requires = "needs-missing", "Needs missing", ("not-installed",)

    def run(self, host):  # pragma: no cover
        raise AssertionError


class CycleA(Check):
    id, title, requires = "cycle-a", "A", ("cycle-b",)

    def run(self, host):  # pragma: no cover
        raise AssertionError


class CycleB(Check):
    id, title, requires = "cycle-b", "B", ("cycle-a",)

    def run(self, host):  # pragma: no cover
        raise AssertionError


class RepairsFails:
    id, title, repairs = "repair-fails", "Repair", ("fails",)


def registry(*classes, broken=(), fixes=()):
    return Registry(
        checks={
            c.id: CheckPlugin(
                c.id, c.title, c.category, c.requires, c, f"t:{c.id}", "tests"
            )
            for c in classes
        },
        fixes={
            f.id: FixPlugin(f.id, f.title, f.repairs, f, "t", "tests") for f in fixes
        },
        broken=tuple(broken),
    )


def run(reg, ids=None, timeout=2.0, skipped=None, ignored=()):
    selection = Selection(
        order_checks(reg, ids or reg.known_check_ids), skipped or {}, frozenset(ignored)
    )
    return {r.id: r for r in run_checks(reg, selection, Host(Config()), timeout)}


def test_each_outcome_becomes_a_result():
    runs = run(registry(Passes, Fails, Crashes, ReturnsJunk))
    assert runs["passes"].status is Status.OK
    assert runs["fails"].status is Status.FAILURE
    assert runs["crashes"].status is Status.ERROR
    assert "ValueError: boom" in runs["crashes"].result.summary
    assert "test_runner.py" in runs["crashes"].result.details[0]
    assert runs["junk"].status is Status.ERROR
    assert "instead of a Result" in runs["junk"].result.summary


def test_a_hanging_check_times_out_and_the_run_goes_on():
    started = time.monotonic()
    try:
        runs = run(registry(Hangs, Passes), timeout=0.5)
    finally:
        Hangs.release.set()
    assert time.monotonic() - started < 1.5
    assert runs["hangs"].status is Status.ERROR
    assert runs["hangs"].result.summary == "timed out after 0.5 s"
    assert runs["passes"].status is Status.OK


def test_checks_run_concurrently():
    class Slow(Check):
        title = "Slow"

        def run(self, host):
            time.sleep(0.4)
            return Result.ok("slept")

    classes = [type(f"Slow{i}", (Slow,), {"id": f"slow-{i}"}) for i in range(4)]
    started = time.monotonic()
    runs = run(registry(*classes))
    assert all(r.status is Status.OK for r in runs.values())
    assert time.monotonic() - started < 1.2  # 4 x 0.4 s sequentially would be 1.6 s


def test_unmet_dependencies_skip_with_the_reason():
    runs = run(registry(Passes, Fails, NeedsFails, NeedsPasses))
    assert runs["needs-fails"].status is Status.SKIPPED
    assert runs["needs-fails"].result.summary == "needs fails (failure) to pass first"
    assert runs["needs-passes"].status is Status.OK


def test_skipped_dependency_skips_dependents():
    runs = run(registry(Passes, NeedsPasses), skipped={"passes": "skipped by --skip"})
    assert runs["passes"].result.summary == "skipped by --skip"
    assert runs["needs-passes"].status is Status.SKIPPED


def test_only_pulls_in_dependencies_first():
    reg = registry(Passes, Fails, NeedsPasses)
    assert order_checks(reg, ["needs-passes"]) == ("passes", "needs-passes")


def test_missing_dependency_and_cycles_are_errors():
    runs = run(registry(NeedsMissing, CycleA, CycleB))
    assert runs["needs-missing"].status is Status.ERROR
    assert (
        "'not-installed', which is not installed"
        in runs["needs-missing"].result.summary
    )
    assert runs["cycle-a"].status is Status.ERROR
    assert "dependency cycle" in runs["cycle-a"].result.summary


def test_broken_plugin_is_an_error_for_its_id():
    broken = BrokenPlugin(
        "kaput",
        "shipyard_doctor.checks",
        "cannot be imported: ImportError: no module x",
        "kaput.mod:Check",
        "kaput-dist",
    )
    runs = run(registry(Passes, broken=[broken]))
    assert runs["kaput"].status is Status.ERROR
    assert "ImportError: no module x" in runs["kaput"].result.summary


def test_fix_ids_come_from_installed_fixes_and_ignore_marks_runs():
    runs = run(registry(Fails, Passes, fixes=[RepairsFails]), ignored={"fails"})
    assert runs["fails"].result.fixes == ("repair-fails",)
    assert runs["passes"].result.fixes == ()
    assert runs["fails"].ignored and not runs["fails"].fails_run
