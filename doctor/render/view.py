"""The one model of what the user sees: lines with roles, drawn by the rich and the
plain renderer alike (colour and symbols are theirs; words, order and what is shown
are decided here once).

The default view reads like ``flutter doctor``: per problem the verdict, at most
three lines of evidence, the first hint shortened to two lines at 80 columns and the
command of its fix; everything else only under ``-v``. A check whose prerequisite
failed (see ``Check.presumes``) says so in one line instead of its own failure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from itertools import groupby
from typing import TYPE_CHECKING, Any

from shipyard_doctor.model import CheckRun, Report, Status
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.fixing import Plan

#: The width the default view is measured at: evidence and the first hint are
#: shortened to fit it, whatever the terminal's width.
VIEW_WIDTH = 80
EVIDENCE_LINES = 3
HINT_LINES = 2
ELLIPSIS = " ..."


class Role(StrEnum):
    HEADER = "header"
    BLANK = "blank"
    CATEGORY = "category"
    CHECK = "check"  # one check's verdict (its run is on the line)
    EVIDENCE = "evidence"
    HINT = "hint"
    FIX = "fix"  # the command of an automatic fix
    MORE = "more"  # what the default view left out, and how to see it
    COUNTS = "counts"  # the closing count and verdict
    NEXT = "next"  # the closing next step
    # fix plans and fix reports
    PLAN = "plan"
    STEP = "step"
    PREVIEW = "preview"
    ADDED = "added"
    REMOVED = "removed"
    DIFF_META = "diff-meta"
    RISK = "risk"
    NOTE = "note"
    FIX_OK = "fix-ok"
    FIX_BAD = "fix-bad"
    FIX_DETAIL = "fix-detail"


@record
class Line:
    """One logical line: a renderer draws it with its own marks, indent and colour,
    and wraps it with a hanging indent."""

    role: Role
    text: str
    run: CheckRun | None = None  # Role.CHECK: the check, for its status mark
    blocked: bool = False  # Role.CHECK: shown as a consequence of a failed check
    suffix: str = ""  # Role.CHECK: " [ignored]", timings


@record
class Layout:
    """Where a renderer puts evidence and hints: the default view's shortening is
    measured from these columns, so it fits ``VIEW_WIDTH`` in either renderer."""

    evidence_column: int
    hint_column: int


# --------------------------------------------------------------------------
# The check report
# --------------------------------------------------------------------------


def header(report: Report) -> str:
    h = report.host
    return (
        f"shipyard-doctor {report.tool_version} on {h['hostname']} ({h['os']}, "
        f"kernel {h['kernel']}) as {h['user']}; Docker endpoint {h['docker_host']}; "
        f"stack {h['stack']}"
    )


def closing(report: Report) -> str:
    counts = report.counts
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    ignored = sum(1 for run in report.runs if run.ignored and run.status.is_problem)
    tail = f" ({ignored} ignored)" if ignored else ""
    verdict = "problems found" if report.failed else "no problems that block Shipyard"
    return f"{len(report.runs)} checks: {', '.join(parts)}{tail} — {verdict}"


def as_admin(command: str, host: Mapping[str, Any]) -> str:
    """``command`` as the user at this host must type it: ``sudo`` unless root."""
    root = host["uid"] == 0 if "uid" in host else host.get("user") == "root"
    return command if root else f"sudo {command}"


def next_step(report: Report) -> str | None:
    """The closing next step: how to run the automatic fixes, when there are any."""
    statuses = {run.id: run.status for run in report.runs}
    fixable = [
        run for run in report.runs if _has_fix(run) and not blocked_by(run, statuses)
    ]
    if not fixable:
        return None
    n = len(fixable)
    what = "problem has an automatic fix" if n == 1 else "problems have automatic fixes"
    command = as_admin("shipyard-doctor check --fix", report.host)
    return f"{n} {what}: {command} (shows each plan first)"


def shows_details(run: CheckRun, verbose: bool) -> bool:
    return verbose or run.status in (Status.WARNING, Status.FAILURE, Status.ERROR)


def report_lines(
    report: Report, layout: Layout, verbose: bool = False, offer_fixes: bool = True
) -> list[Line]:
    """The whole ``check`` report, in order, header to closing lines."""
    lines = [Line(Role.HEADER, header(report))]
    statuses = {run.id: run.status for run in report.runs}
    by_category = sorted(report.runs, key=lambda r: r.category)
    for category, runs in groupby(by_category, key=lambda r: r.category):
        lines += [Line(Role.BLANK, ""), Line(Role.CATEGORY, category)]
        for run in runs:
            lines.extend(_run_lines(run, report, statuses, layout, verbose))
    lines += [Line(Role.BLANK, ""), Line(Role.COUNTS, closing(report))]
    step = next_step(report) if offer_fixes else None
    if step:
        lines.append(Line(Role.NEXT, step))
    return lines


def _run_lines(
    run: CheckRun,
    report: Report,
    statuses: Mapping[str, Status],
    layout: Layout,
    verbose: bool,
) -> Iterator[Line]:
    suffix = " [ignored]" if run.ignored else ""
    if verbose:
        suffix += f" ({run.duration:.2f} s)"
    failed = blocked_by(run, statuses)
    if failed and not verbose:
        text = f"needs {', '.join(failed)} to pass first (its own findings: -v)"
        yield Line(Role.CHECK, text, run, blocked=True, suffix=suffix)
        return
    yield Line(Role.CHECK, run.result.summary, run, suffix=suffix)
    if not shows_details(run, verbose):
        return
    result = run.result
    if verbose:
        yield from (Line(Role.EVIDENCE, line) for line in result.details)
        yield from (Line(Role.HINT, hint) for hint in result.hints)
    else:
        room = VIEW_WIDTH - layout.evidence_column - EVIDENCE_HANG
        shown, budget = 0, EVIDENCE_LINES
        for detail in result.details:
            if budget <= 0:
                break
            wrapped = len(wrap(detail, room))
            yield Line(Role.EVIDENCE, shorten(detail, room, budget))
            shown, budget = shown + 1, budget - wrapped
        if result.hints:
            room = VIEW_WIDTH - layout.hint_column
            yield Line(Role.HINT, shorten(result.hints[0], room, HINT_LINES))
        more = _left_out(len(result.details) - shown, len(result.hints) - 1)
        if more:
            yield Line(Role.MORE, more)
    for fix_id in result.fixes:
        yield Line(
            Role.FIX, f"fix: {as_admin(f'shipyard-doctor fix {fix_id}', report.host)}"
        )


def blocked_by(run: CheckRun, statuses: Mapping[str, Status]) -> list[str]:
    """The failed checks that ``run``'s own problem follows from (``presumes``)."""
    if not run.status.is_problem:
        return []
    return [
        f"{dep} ({statuses[dep].value})"
        for dep in run.presumes
        if dep in statuses and statuses[dep].is_problem
    ]


def _left_out(details: int, hints: int) -> str:
    parts = []
    if details > 0:
        parts.append(f"{details} more line{'s' if details > 1 else ''} of evidence")
    if hints > 0:
        parts.append(f"{hints} more hint{'s' if hints > 1 else ''}")
    return f"({' and '.join(parts)}: -v)" if parts else ""


def _has_fix(run: CheckRun) -> bool:
    return run.status in (Status.WARNING, Status.FAILURE) and bool(run.result.fixes)


# --------------------------------------------------------------------------
# Wrapping and shortening (shared by both renderers)
# --------------------------------------------------------------------------


def wrap(text: str, width: int) -> list[str]:
    """Words kept whole where they fit (options like --tlsverify never split at a
    hyphen); a word longer than the line is cut, so the hanging indent holds."""
    return textwrap.wrap(
        text, max(width, 10), break_on_hyphens=False, drop_whitespace=True
    ) or [""]


def shorten(text: str, width: int, lines: int) -> str:
    """``text`` cut at a word to fit ``lines`` lines of ``width`` columns."""
    wrapped = wrap(text, width)
    if len(wrapped) <= lines:
        return text
    kept = wrapped[:lines]
    last = kept[-1]
    while last and len(last) + len(ELLIPSIS) > max(width, 10):
        last = last.rsplit(" ", 1)[0] if " " in last else last[: -len(ELLIPSIS)]
    return " ".join([*kept[:-1], last]).rstrip() + ELLIPSIS


#: Continuation lines of a piece of evidence sit this much further in, so a wrapped
#: line does not look like the next piece.
EVIDENCE_HANG = 2


def hanging(prefix: str, text: str, width: int, extra: int = 0) -> list[str]:
    """``prefix`` then ``text`` wrapped under itself: continuation lines are indented
    to where the text started (plus ``extra``), so the eye keeps which check they
    belong to."""
    indent = " " * (len(prefix) + extra)
    if not text:
        return [prefix.rstrip()]
    first, *rest = wrap(text, width - len(prefix))
    rest = wrap(" ".join(rest), width - len(indent)) if rest else []
    return [prefix + first, *(indent + line for line in rest)]


# --------------------------------------------------------------------------
# Fix plans and fix reports
# --------------------------------------------------------------------------


def plan_lines(plan: Plan) -> list[Line]:
    """A fix plan: every step, each file's full diff, the risk, the notes."""
    lines = [
        Line(Role.PLAN, f"fix {plan.fix_id} (for {plan.check_id}): {plan.summary}")
    ]
    pending = plan.pending
    for number, step in enumerate(pending, start=1):
        lines.append(Line(Role.STEP, f"  {number}. {step.describe()}"))
        lines.extend(
            Line(_diff_role(line), f"     {line}")
            for line in step.preview().splitlines()
        )
    done = len(plan.steps) - len(pending)
    if done:
        s = "s" if done > 1 else ""
        lines.append(Line(Role.NOTE, f"  ({done} step{s} already in place)"))
    if plan.risk:
        lines.append(Line(Role.RISK, f"  risk: {plan.risk}"))
    lines.extend(Line(Role.NOTE, f"  note: {note}") for note in plan.notes)
    lines.extend(Line(Role.NOTE, f"  run yourself: {c}") for c in plan.manual)
    return lines


def _diff_role(line: str) -> Role:
    if line.startswith(("+++", "---", "@@")):
        return Role.DIFF_META
    if line.startswith("+"):
        return Role.ADDED
    if line.startswith("-"):
        return Role.REMOVED
    return Role.PREVIEW


GOOD_OUTCOMES = ("applied", "nothing-to-do", "planned")


def fix_report_lines(reports: Sequence[FixReport]) -> list[Line]:
    lines = []
    for report in reports:
        outcome = report.outcome.value
        role = Role.FIX_OK if outcome in GOOD_OUTCOMES else Role.FIX_BAD
        text = f"fix {report.fix_id} ({report.check_id}): {outcome} — {report.message}"
        lines.append(Line(role, text))
        if report.plan is not None and outcome == "nothing-to-do":
            lines.extend(
                Line(Role.FIX_DETAIL, f"    run yourself: {c}")
                for c in report.plan.manual
            )
        lines.extend(Line(Role.FIX_DETAIL, f"    {line}") for line in report.rollback)
        if report.run_id and outcome == "applied":
            undo = f"    undo with: shipyard-doctor undo {report.run_id}"
            lines.append(Line(Role.FIX_DETAIL, undo))
    return lines
