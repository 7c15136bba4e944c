"""Plain-text rendering: for pipes, logs, NO_COLOR, and support tickets.

ASCII status words rather than symbols, so the output survives any terminal or log
collector; one check per line, evidence and hints indented under problems, long lines
wrapped at 80 columns under themselves. What is shown is decided in view.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from shipyard_doctor.model import Report, Status
from shipyard_doctor.registry import Registry
from shipyard_doctor.render.view import (
    EVIDENCE_HANG,
    Layout,
    Line,
    Role,
    fix_report_lines,
    hanging,
    plan_lines,
    report_lines,
)

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
BLOCKED = "blocked"
WIDTH = 80
DETAIL = " " * 13  # under the check's id
PREFIX = {
    Role.EVIDENCE: DETAIL,
    Role.HINT: DETAIL + "-> ",
    Role.FIX: DETAIL,
    Role.MORE: DETAIL,
}
LAYOUT = Layout(evidence_column=len(DETAIL), hint_column=len(PREFIX[Role.HINT]))


def line_text(line: Line, width: int = WIDTH) -> list[str]:
    """One model line as plain text, wrapped with a hanging indent."""
    if line.role is Role.CHECK and line.run is not None:
        label = BLOCKED if line.blocked else LABEL[line.run.status]
        prefix = f"  {label:<8} "
        return hanging(prefix, f"{line.run.id}: {line.text}{line.suffix}", width)
    if line.role in PREFIX:
        extra = EVIDENCE_HANG if line.role is Role.EVIDENCE else 0
        return hanging(PREFIX[line.role], line.text, width, extra)
    if line.role is Role.CATEGORY:
        return [line.text]
    return hanging("", line.text, width) if line.text else [""]


def render_report(
    report: Report,
    out: TextIO,
    verbose: bool = False,
    width: int = WIDTH,
    offer_fixes: bool = True,
) -> None:
    for line in report_lines(report, LAYOUT, verbose, offer_fixes):
        out.write("".join(text + "\n" for text in line_text(line, width)))


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


def render_plan(plan: Plan, out: TextIO) -> None:
    # Diffs and commands are printed as they are, never wrapped: they are copied.
    out.write("\n" + "".join(line.text + "\n" for line in plan_lines(plan)))


def render_fix_reports(reports: Sequence[FixReport], out: TextIO) -> None:
    if reports:
        out.write(
            "\n" + "".join(f"{line.text}\n" for line in fix_report_lines(reports))
        )
