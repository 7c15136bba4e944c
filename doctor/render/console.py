"""The rich, grouped terminal view: ✓ ! ✗ per check, the hint under each problem.

rich is imported here only, and this module only when stdout is a terminal, so plain
and JSON runs (and ``--help``) never pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from shipyard_doctor.model import Report, Status
from shipyard_doctor.registry import Registry
from shipyard_doctor.render.text import (
    closing,
    fix_report_lines,
    header,
    plan_lines,
    shows_details,
)

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.fixing import Plan

SYMBOL = {
    Status.OK: ("✓", "green"),
    Status.WARNING: ("!", "yellow"),
    Status.FAILURE: ("✗", "red"),
    Status.SKIPPED: ("-", "dim"),
    Status.ERROR: ("✗", "bold red"),
}


def make_console(out: TextIO, width: int | None = None) -> Console:
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def render_report(
    report: Report, out: TextIO, verbose: bool = False, width: int | None = None
) -> None:
    console = make_console(out, width)
    console.print(f"[dim]{escape(header(report))}[/]")
    for category, runs in groupby(
        sorted(report.runs, key=lambda r: r.category), key=lambda r: r.category
    ):
        console.print(f"\n[bold]{escape(category)}[/]")
        for run in runs:
            symbol, style = SYMBOL[run.status]
            ignored = " [dim]\\[ignored][/]" if run.ignored else ""
            timing = f" [dim]({run.duration:.2f} s)[/]" if verbose else ""
            console.print(
                f"  [{style}]{symbol}[/] [bold]{escape(run.title)}[/] "
                f"[dim]({run.id})[/]: {escape(run.result.summary)}{ignored}{timing}"
            )
            if shows_details(run, verbose):
                for line in run.result.details:
                    console.print(f"      [dim]{escape(line)}[/]")
                for line in run.result.hints:
                    console.print(f"      [cyan]→ {escape(line)}[/]")
                if run.result.fixes:
                    fixes = escape(", ".join(run.result.fixes))
                    console.print(f"      [cyan]fixes available: {fixes}[/]")
    style = "red" if report.failed else "green"
    console.print(f"\n[{style}]{escape(closing(report))}[/]")


def render_list(registry: Registry, out: TextIO, width: int | None = None) -> None:
    console = make_console(out, width)
    table = Table(box=None, header_style="bold")
    for column in ("id", "category", "title", "fixes"):
        table.add_column(column)
    for plugin in sorted(registry.checks.values(), key=lambda p: (p.category, p.id)):
        fixes = ", ".join(registry.fixes_for(plugin.id)) or "-"
        table.add_row(plugin.id, plugin.category, plugin.title, fixes)
    console.print(table)
    for broken in registry.broken:
        console.print(
            f"[red]broken[/] {escape(broken.id)} ({escape(broken.distribution)}): "
            f"{escape(broken.reason)}"
        )


def render_plan(plan: Plan, out: TextIO) -> None:
    console = make_console(out)
    console.print()
    for line in plan_lines(plan):
        stripped = line.strip()
        if line.startswith("fix "):
            style = "bold"
        elif stripped.startswith(("+++", "---", "@@")):
            style = "dim"
        elif stripped.startswith("+"):
            style = "green"
        elif stripped.startswith("-"):
            style = "red"
        elif stripped.startswith("risk:"):
            style = "yellow"
        else:
            style = ""
        console.print(escape(line), style=style or None)


def render_fix_reports(reports: Sequence[FixReport], out: TextIO) -> None:
    if not reports:
        return
    console = make_console(out)
    console.print()
    good = ("applied", "nothing-to-do", "planned")
    for line in fix_report_lines(reports):
        bad = line.startswith("fix ") and not any(f": {g} " in line for g in good)
        console.print(escape(line), style="red" if bad else None)
