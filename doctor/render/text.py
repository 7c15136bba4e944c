"""Plain-text rendering: for pipes, logs, NO_COLOR, and support tickets.

ASCII status words rather than symbols, so the output survives any terminal or log
collector; one check per line, evidence and hints indented under problems.
"""

from __future__ import annotations

from itertools import groupby
from typing import TextIO

from shipyard_doctor.model import CheckRun, Report, Status
from shipyard_doctor.registry import Registry

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
