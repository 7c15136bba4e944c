"""What a command ended with, and the one function that turns it into an exit code.

Commands return a :class:`CommandOutcome` (the checks that ran, the fix reports if
fixes were offered); the CLI hands it, or the exception that ended the command, to
:func:`exit_code`. The codes and their meaning are documented in README.md and in
``--help`` (``ExitCode`` in doctor/errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard_doctor.errors import ExitCode
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.model import CheckRun


@record
class CommandOutcome:
    """The end of a command that ran: its checks, and its fixes when it offered any."""

    runs: Sequence[CheckRun] = ()
    fixes: Sequence[FixReport] = ()
    usage: bool = False  # no command given: help was shown
    declined: bool = False  # the user said no (or could not be asked): nothing done
    failed: bool = False  # the command itself failed (deploy): said why already
    interrupted: bool = False  # stopped by a signal, and cleaned up after itself


def exit_code(outcome: CommandOutcome | BaseException) -> ExitCode:
    """0 no problem left, 1 a check still fails (or errors, and is not ignored),
    2 usage, 3 fixes planned but not applied, 4 locked, 70 internal, 130 interrupted.

    A check that a fix repaired counts with its result after the fix."""
    if isinstance(outcome, BaseException):
        return ExitCode.for_exception(outcome)
    if outcome.usage:
        return ExitCode.USAGE
    if outcome.interrupted:
        return ExitCode.INTERRUPTED
    if outcome.failed:
        return ExitCode.PROBLEMS
    if outcome.declined:
        return ExitCode.NOT_APPLIED
    if any(report.outcome.value == "not-applied" for report in outcome.fixes):
        return ExitCode.NOT_APPLIED
    repaired = {
        report.check_id: report.recheck
        for report in outcome.fixes
        if report.recheck is not None and report.outcome.value == "applied"
    }
    for run in outcome.runs:
        final = repaired.get(run.id) or run
        if final.status.is_problem and not run.ignored:
            return ExitCode.PROBLEMS
    return ExitCode.OK
