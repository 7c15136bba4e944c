"""The fix commands' own lines, the same on a terminal and in a pipe: nothing to fix,
the confirmation question, undo's result and the list of recorded runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.manifest import Manifest
    from shipyard_doctor.fixing import Plan
    from shipyard_doctor.model import CheckRun


def nothing_to_fix(runs: Sequence[CheckRun]) -> str:
    """The line for ``fix ID`` when its checks pass (also the JSON's ``message``)."""
    states = ", ".join(f"{r.id} {r.status.value}: {r.result.summary}" for r in runs)
    return f"nothing to fix: {states}"


def must_pass_first(fix_id: str, blocking: Sequence[CheckRun]) -> str:
    """The line for ``fix ID`` when a check it needs does not pass."""
    states = "; ".join(
        f"{r.id} ({r.status.value}: {r.result.summary})" for r in blocking
    )
    return f"cannot fix with {fix_id} yet, this must pass first: {states}"


def render_nothing_to_fix(runs: Sequence[CheckRun], out: TextIO) -> None:
    out.write(f"{nothing_to_fix(runs)}\n")


def render_must_pass_first(
    fix_id: str, blocking: Sequence[CheckRun], out: TextIO
) -> None:
    out.write(f"{must_pass_first(fix_id, blocking)}\n")


def render_question(plan: Plan, out: TextIO) -> None:
    """Ask before applying ``plan``; the answer is read by the command."""
    out.write(f"apply fix {plan.fix_id}? [y/N] ")
    out.flush()


def render_undo(run_id: str, lines: Sequence[str], out: TextIO) -> None:
    out.write(f"undid fix run {run_id}\n")
    for line in lines:
        out.write(f"  {line}\n")


def render_runs(runs: Sequence[Manifest], directory: Path, out: TextIO) -> None:
    for run in runs:
        fixes = ", ".join(f"{f.fix} {f.status}" for f in run.fixes)
        undone = " (undone)" if run.undone else ""
        out.write(f"{run.run}  {run.started}  {fixes}{undone}\n")
    if not runs:
        out.write(f"no fix runs recorded in {directory}\n")
