"""The rich, grouped terminal view: ✓ ! ✗ per check, the hint under each problem.

It draws the same model of the view as the plain renderer (view.py), with symbols and
colour. rich is imported here only, and this module only when stdout is a terminal, so
plain and JSON runs (and ``--help``) never pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text
from shipyard_doctor.model import Report, Status
from shipyard_doctor.registry import Registry
from shipyard_doctor.render.view import (
    EVIDENCE_HANG,
    Layout,
    Line,
    Role,
    fix_report_lines,
    plan_lines,
    report_lines,
)

if TYPE_CHECKING:
    from rich.status import Status as Spinner
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.fixing import Plan
    from shipyard_doctor.model import CheckRun
    from shipyard_doctor.runner import Progress

SYMBOL = {
    Status.OK: ("✓", "green"),
    Status.WARNING: ("!", "yellow"),
    Status.FAILURE: ("✗", "red"),
    Status.SKIPPED: ("-", "dim"),
    Status.ERROR: ("✗", "bold red"),
}
BLOCKED = ("-", "dim")
DETAIL = " " * 6
PREFIX = {
    Role.EVIDENCE: (DETAIL, "dim"),
    Role.HINT: (DETAIL + "→ ", "cyan"),
    Role.FIX: (DETAIL, "cyan"),
    Role.MORE: (DETAIL, "dim"),
}
STYLE = {
    Role.HEADER: "dim",
    Role.CATEGORY: "bold",
    Role.PLAN: "bold",
    Role.DIFF_META: "dim",
    Role.ADDED: "green",
    Role.REMOVED: "red",
    Role.RISK: "yellow",
    Role.FIX_BAD: "red",
}
LAYOUT = Layout(evidence_column=len(DETAIL), hint_column=len(PREFIX[Role.HINT][0]))


def make_console(out: TextIO, width: int | None = None) -> Console:
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def line_text(line: Line, failed: bool = False) -> tuple[Text, Text]:
    """One model line as (prefix, text): the text wraps under itself, after the
    prefix."""
    if line.role is Role.CHECK and line.run is not None:
        run = line.run
        symbol, style = BLOCKED if line.blocked else SYMBOL[run.status]
        text = Text.assemble(
            (run.title, "bold"), " ", (f"({run.id})", "dim"), ": ", line.text
        )
        text.append(line.suffix, style="dim")
        return Text.assemble("  ", (symbol, style), " "), text
    if line.role in PREFIX:
        prefix, style = PREFIX[line.role]
        return Text(prefix, style=style), Text(line.text, style=style)
    if line.role is Role.COUNTS:
        return Text(), Text(line.text, style="red" if failed else "green")
    return Text(), Text(line.text, style=STYLE.get(line.role, ""))


def draw(console: Console, prefix: Text, text: Text, extra: int = 0) -> None:
    """Print ``prefix`` then ``text`` wrapped to the console, continuation lines
    indented under the text, plus ``extra`` (a hanging indent)."""
    first, *rest = text.wrap(console, max(console.width - prefix.cell_len, 10))
    indent = Text(" " * (prefix.cell_len + extra))
    if rest:
        rest = list(Text(" ").join(rest).wrap(console, console.width - indent.cell_len))
    for head, part in ((prefix, first), *((indent, r) for r in rest)):
        part.rstrip()
        console.print(Text.assemble(head, part), no_wrap=True, crop=False)


def render_report(
    report: Report,
    out: TextIO,
    verbose: bool = False,
    width: int | None = None,
    offer_fixes: bool = True,
) -> None:
    console = make_console(out, width)
    for line in report_lines(report, LAYOUT, verbose, offer_fixes):
        extra = EVIDENCE_HANG if line.role is Role.EVIDENCE else 0
        draw(console, *line_text(line, report.failed), extra)


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
            Text.assemble(
                ("broken", "red"),
                f" {broken.id} ({broken.distribution}): {broken.reason}",
            )
        )


def render_plan(plan: Plan, out: TextIO) -> None:
    console = make_console(out)
    console.print()
    for line in plan_lines(plan):
        console.print(Text(line.text, style=STYLE.get(line.role, "")))


def render_fix_reports(reports: Sequence[FixReport], out: TextIO) -> None:
    if not reports:
        return
    console = make_console(out)
    console.print()
    for line in fix_report_lines(reports):
        console.print(Text(line.text, style=STYLE.get(line.role, "")))


SPINNER_DELAY = 0.5  # seconds: a quick run shows no spinner at all


@contextmanager
def check_spinner(ids: Sequence[str], out: TextIO) -> Iterator[Progress]:
    """A spinner naming the checks still running, once a run takes longer than
    ``SPINNER_DELAY``; on a terminal only, and gone (transient) when the run ends.

    Yields the runner's progress callback: the runner reports, this draws."""
    console = make_console(out)
    pending = list(ids)
    lock = threading.Lock()
    spinner: list[Spinner] = []

    def label() -> str:
        names = ", ".join(pending)
        return f"running {len(pending)} of {len(ids)} checks: {names}"

    def text() -> Text:
        return Text(label(), style="dim", no_wrap=True, overflow="ellipsis")

    def start() -> None:
        with lock:
            if pending and not stopped.is_set():
                spinner.append(console.status(text()))
                spinner[0].start()

    def finished(run: CheckRun) -> None:
        with lock:
            if run.id in pending:
                pending.remove(run.id)
            if spinner and pending:
                spinner[0].update(text())

    stopped = threading.Event()
    timer = threading.Timer(SPINNER_DELAY, start)
    timer.daemon = True
    if console.is_terminal:
        timer.start()
    try:
        yield finished
    finally:
        stopped.set()
        timer.cancel()
        with lock:
            if spinner:
                spinner[0].stop()
