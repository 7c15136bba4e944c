"""The one place exit codes are decided: every documented code from its outcome."""

from __future__ import annotations

import pytest
from shipyard_doctor.errors import ConfigError, ExitCode, Interrupted
from shipyard_doctor.fixengine.fixrun import FixReport, Outcome
from shipyard_doctor.fixengine.journal import FixLocked, JournalError
from shipyard_doctor.model import CheckRun, Result
from shipyard_doctor.outcome import CommandOutcome, exit_code


def run(result: Result, ignored: bool = False) -> CheckRun:
    return CheckRun("ports", "Ports", "network", result, ignored=ignored)


FAILING = run(Result.failure("port 80 taken"))
FIXED = run(Result.ok("ports free"))


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (CommandOutcome(), ExitCode.OK),
        (CommandOutcome(runs=[run(Result.warning("slow"))]), ExitCode.OK),
        (CommandOutcome(runs=[FAILING]), ExitCode.PROBLEMS),
        (CommandOutcome(runs=[run(Result.error("boom"))]), ExitCode.PROBLEMS),
        (CommandOutcome(runs=[run(Result.failure("x"), ignored=True)]), ExitCode.OK),
        (CommandOutcome(usage=True), ExitCode.USAGE),
        (
            CommandOutcome(
                runs=[FAILING],
                fixes=[FixReport("ports", "ports", Outcome.APPLIED, "", recheck=FIXED)],
            ),
            ExitCode.OK,
        ),
        (
            CommandOutcome(
                runs=[FAILING],
                fixes=[FixReport("ports", "ports", Outcome.ROLLED_BACK, "")],
            ),
            ExitCode.PROBLEMS,
        ),
        (
            CommandOutcome(
                runs=[FAILING],
                fixes=[FixReport("ports", "ports", Outcome.NOT_APPLIED, "")],
            ),
            ExitCode.NOT_APPLIED,
        ),
        (ConfigError("bad key"), ExitCode.USAGE),
        (JournalError("disk full"), ExitCode.PROBLEMS),
        (FixLocked("held"), ExitCode.LOCKED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (Interrupted("undo it"), ExitCode.INTERRUPTED),
        (BrokenPipeError(), ExitCode.OK),
        (SystemExit(0), ExitCode.OK),
        (SystemExit(2), ExitCode.USAGE),
        (ValueError("bug"), ExitCode.INTERNAL),
    ],
)
def test_exit_code(outcome, code):
    assert exit_code(outcome) is code


class _InterruptedWhileNamed:
    """A descriptor whose ``__set_name__`` meets a Ctrl-C, as a dataclass field
    can while its module imports."""

    def __set_name__(self, owner: type, name: str) -> None:
        raise KeyboardInterrupt


def test_a_ctrl_c_that_python_wrapped_is_still_an_interrupt():
    try:
        type("Owner", (), {"field": _InterruptedWhileNamed()})
    except BaseException as exc:  # Python 3.11: RuntimeError("Error calling ...")
        raised = exc
    assert exit_code(raised) is ExitCode.INTERRUPTED, repr(raised)
    try:
        raise RuntimeError("wrapped") from KeyboardInterrupt()
    except RuntimeError as exc:
        assert exit_code(exc) is ExitCode.INTERRUPTED
    try:
        raise RuntimeError("a bug") from ValueError("not an interrupt")
    except RuntimeError as exc:
        assert exit_code(exc) is ExitCode.INTERNAL
