"""Running fixes: plan, show, ask, apply with the journal, verify, roll back.

The only place where fixes' steps are applied. For every check that failed (or
warned) and names an installed fix: the fix plans (changing nothing); the plan is
shown; the user's answer (or --yes / --dry-run, or no terminal to ask) decides; the
steps are applied under the journal lock with a backup before each change; then the
check is run again on a fresh view of the host, and a fix whose check still fails is
rolled back from the journal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from shipyard_doctor.errors import DoctorError, Interrupted
from shipyard_doctor.fixengine.journal import Journal, JournalError, RunJournal
from shipyard_doctor.fixing import FixError, FixOptions, Plan
from shipyard_doctor.model import CheckRun, Status
from shipyard_doctor.records import field, mutable_record, record
from shipyard_doctor.registry import Registry


class Mode(StrEnum):
    ASK = "ask"  # a terminal: ask per fix, default No
    YES = "yes"  # --yes
    DRY_RUN = "dry-run"  # --dry-run: plans only
    NO_TTY = "no-tty"  # nobody to ask and no --yes: plans only, exit 3


class Outcome(StrEnum):
    APPLIED = "applied"
    NOTHING_TO_DO = "nothing-to-do"
    PLANNED = "planned"  # dry run
    NOT_APPLIED = "not-applied"  # no terminal to ask, no --yes
    DECLINED = "declined"
    ROLLED_BACK = "rolled-back"  # applied, but the check still failed
    FAILED = "failed"  # a step failed; what it had done was rolled back


@record
class FixReport:
    """What became of one fix; built once, when it is decided."""

    fix_id: str
    check_id: str
    outcome: Outcome
    message: str
    plan: Plan | None = None
    run_id: str | None = None
    rollback: list[str] = field(default_factory=list)  # never changed once built
    recheck: CheckRun | None = None
    # What the steps said before they ran ("create X" stays "create X" afterwards).
    described: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "fix": self.fix_id,
            "check": self.check_id,
            "outcome": self.outcome.value,
            "message": self.message,
            "journal_run": self.run_id,
            "plan": None
            if plan is None
            else {
                "summary": plan.summary,
                "steps": list(self.described)
                or [step.describe() for step in plan.steps],
                "risk": plan.risk,
                "notes": list(plan.notes),
                "manual": list(plan.manual),
            },
            "rollback": list(self.rollback),
            "recheck": None if self.recheck is None else self.recheck.to_dict(),
        }


Recheck = Callable[[str], CheckRun]


@mutable_record
class FixSession:
    """One run of fixes: each planned, offered, applied and verified, all in one
    journal run."""

    registry: Registry
    journal: Journal
    options: FixOptions
    mode: Mode
    recheck: Recheck  # runs one check again on a fresh view of the host
    command: Sequence[str]
    show: Callable[[Plan], None] = lambda plan: None
    confirm: Callable[[Plan], bool] = lambda plan: False
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _run: RunJournal | None = None

    def __enter__(self) -> FixSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()  # releases the journal lock, if a fix took it

    def fix_all(self, runs: Sequence[CheckRun], host: Any) -> list[FixReport]:
        """Offer every installed fix for every check that did not pass."""
        return [
            self.fix_one(fix_id, run, host)
            for run in runs
            if run.status in (Status.WARNING, Status.FAILURE)
            for fix_id in run.result.fixes
        ]

    def fix_one(self, fix_id: str, run: CheckRun, host: Any) -> FixReport:
        plugin = self.registry.fixes[fix_id]
        try:
            plan = plugin.cls().plan(run.result, host, self.options)
        except DoctorError:
            raise
        except Exception as exc:  # a broken fix plugin must not end the run
            return FixReport(
                fix_id,
                run.id,
                Outcome.FAILED,
                f"could not plan: {type(exc).__name__}: {exc}",
            )
        if not plan.pending:
            return FixReport(fix_id, run.id, Outcome.NOTHING_TO_DO, plan.summary, plan)
        self.show(plan)
        if self.mode is Mode.DRY_RUN:
            return FixReport(fix_id, run.id, Outcome.PLANNED, "dry run", plan)
        if self.mode is Mode.NO_TTY:
            return FixReport(
                fix_id,
                run.id,
                Outcome.NOT_APPLIED,
                "not applied: no terminal to ask; use --yes",
                plan,
            )
        if self.mode is Mode.ASK and not self.confirm(plan):
            return FixReport(fix_id, run.id, Outcome.DECLINED, "declined", plan)
        return self._apply(plan, run)

    def _apply(self, plan: Plan, run: CheckRun) -> FixReport:
        described = tuple(step.describe() for step in plan.pending)
        if self._run is None:
            self._run = self._stack.enter_context(self.journal.run(self.command))
        journal = self._run
        journal.begin_fix(plan.fix_id, plan.check_id)

        def report(outcome: Outcome, message: str, **kw: Any) -> FixReport:
            return FixReport(
                plan.fix_id,
                run.id,
                outcome,
                message,
                plan,
                journal.run_id,
                described=described,
                **kw,
            )

        try:
            for step in plan.pending:
                try:
                    step.apply(journal)
                except KeyboardInterrupt as exc:
                    # The journal has every step so far; the command that ran was
                    # stopped with its process group. Undo reverses the rest.
                    raise Interrupted(
                        f"fix {plan.fix_id} was stopped while applying: "
                        f"`shipyard-doctor undo {journal.run_id}` reverses what "
                        "it did so far"
                    ) from exc
                except OSError as exc:  # e.g. a read-only mount: report, roll back
                    reason = exc.strerror or str(exc)
                    where = f" {exc.filename}" if exc.filename else ""
                    raise FixError(f"{step.describe()}: {reason}{where}") from exc
                except JournalError as exc:  # e.g. a full disk under the journal
                    raise FixError(f"{step.describe()}: {exc}") from exc
                except FixError:
                    raise
                except Exception as exc:  # a broken step must not leave it half done
                    raise FixError(
                        f"{step.describe()}: {type(exc).__name__}: {exc}"
                    ) from exc
        except FixError as exc:
            undone, status = self._rollback(journal, Outcome.FAILED, str(exc))
            return report(Outcome.FAILED, f"{exc}; {status}", rollback=undone)
        again = self.recheck(run.id)
        if again.status.is_problem:
            reason = f"{run.id} still {again.status.value}: {again.result.summary}"
            undone, status = self._rollback(journal, Outcome.ROLLED_BACK, reason)
            return report(
                Outcome.ROLLED_BACK,
                f"{status}: {reason}",
                rollback=undone,
                recheck=again,
            )
        journal.end_fix(Outcome.APPLIED.value)
        return report(
            Outcome.APPLIED,
            f"applied; {run.id} now {again.status.value}: {again.result.summary}",
            rollback=[],
            recheck=again,
        )

    @staticmethod
    def _rollback(
        journal: RunJournal, outcome: Outcome, reason: str
    ) -> tuple[list[str], str]:
        """Reverse the fix in progress; a rollback that could not restore everything
        leaves the fix undoable, and says so."""
        undone, complete = journal.rollback_current()
        if complete:
            journal.end_fix(outcome.value, reason)
            return undone, "rolled back"
        journal.end_fix("rollback-incomplete", reason)
        return undone, (
            f"NOT completely rolled back (run `shipyard-doctor undo "
            f"{journal.run_id}` once the cause is fixed)"
        )
