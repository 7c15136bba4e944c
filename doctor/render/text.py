"""Plain-text rendering: for pipes, logs, NO_COLOR, and support tickets.

ASCII status words rather than symbols, so the output survives any terminal or log
collector; one check per line, evidence and hints indented under problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from shipyard_doctor.model import CheckRun, Report, Status
from shipyard_doctor.registry import Registry

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.fixing import Plan

LABEL = {
    Status.OK: "ok",
    Status.WARNING: "warning",
    Status.FAILURE: "FAILURE",
    Status.SKIPPED: "skipped",
    Status.ERROR: "ERROR",
}


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


def shows_details(run: CheckRun, verbose: bool) -> bool:
    return verbose or run.status in (Status.WARNING, Status.FAILURE, Status.ERROR)


def render_report(report: Report, out: TextIO, verbose: bool = False) -> None:
    out.write(header(report) + "\n")
    for category, runs in groupby(
        sorted(report.runs, key=lambda r: r.category), key=lambda r: r.category
    ):
        out.write(f"\n{category}\n")
        for run in runs:
            ignored = " [ignored]" if run.ignored else ""
            timing = f" ({run.duration:.2f} s)" if verbose else ""
            out.write(
                f"  {LABEL[run.status]:<8} {run.id}: {run.result.summary}"
                f"{ignored}{timing}\n"
            )
            if shows_details(run, verbose):
                for line in run.result.details:
                    out.write(f"             {line}\n")
                for line in run.result.hints:
                    out.write(f"             -> {line}\n")
                if run.result.fixes:
                    fixes = ", ".join(run.result.fixes)
                    out.write(f"             fixes available: {fixes}\n")
    out.write(f"\n{closing(report)}\n")


def render_list(registry: Registry, out: TextIO) -> None:
    rows = [("ID", "CATEGORY", "TITLE", "FIXES")]
    for plugin in sorted(registry.checks.values(), key=lambda p: (p.category, p.id)):
        fixes = ", ".join(registry.fixes_for(plugin.id)) or "-"
        rows.append((plugin.id, plugin.category, plugin.title, fixes))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
            + "  "
            + row[3]
            + "\n"
        )
    for broken in registry.broken:
        out.write(f"BROKEN {broken.id} ({broken.distribution}): {broken.reason}\n")


def plan_lines(plan: Plan) -> list[str]:
    """A fix plan as lines of text: every step, each file's full diff, the risk."""
    lines = [f"fix {plan.fix_id} (for {plan.check_id}): {plan.summary}"]
    pending = plan.pending
    for number, step in enumerate(pending, start=1):
        lines.append(f"  {number}. {step.describe()}")
        lines.extend(f"     {line}" for line in step.preview().splitlines())
    done = len(plan.steps) - len(pending)
    if done:
        lines.append(f"  ({done} step{'s' if done > 1 else ''} already in place)")
    if plan.risk:
        lines.append(f"  risk: {plan.risk}")
    lines.extend(f"  note: {note}" for note in plan.notes)
    lines.extend(f"  run yourself: {command}" for command in plan.manual)
    return lines


def render_plan(plan: Plan, out: TextIO) -> None:
    out.write("\n" + "\n".join(plan_lines(plan)) + "\n")


def fix_report_lines(reports: Sequence[FixReport]) -> list[str]:
    lines = []
    for report in reports:
        lines.append(
            f"fix {report.fix_id} ({report.check_id}): {report.outcome.value}"
            f" — {report.message}"
        )
        if report.plan is not None and report.outcome.value == "nothing-to-do":
            lines.extend(f"    run yourself: {c}" for c in report.plan.manual)
        lines.extend(f"    {line}" for line in report.rollback)
        if report.run_id and report.outcome.value == "applied":
            lines.append(f"    undo with: shipyard-doctor undo {report.run_id}")
    return lines


def render_fix_reports(reports: Sequence[FixReport], out: TextIO) -> None:
    if reports:
        out.write("\n" + "\n".join(fix_report_lines(reports)) + "\n")
