"""The --json document (schema documented in README.md, "JSON output")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from shipyard_doctor.model import SCHEMA_VERSION, Report
from shipyard_doctor.registry import Registry

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.model import CheckRun


def render_report(
    report: Report, out: TextIO, fixes: Sequence[FixReport] | None = None
) -> None:
    doc = report.to_dict()
    if fixes is not None:
        doc["fixes"] = [fix.to_dict() for fix in fixes]
    _write(doc, out)


def render_list(registry: Registry, out: TextIO, version: str) -> None:
    checks: list[dict[str, Any]] = [
        {
            "id": p.id,
            "title": p.title,
            "category": p.category,
            "requires": list(p.requires),
            "fixes": list(registry.fixes_for(p.id)),
            "distribution": p.distribution,
        }
        for p in sorted(registry.checks.values(), key=lambda p: p.id)
    ]
    broken = [
        {
            "id": b.id,
            "group": b.group,
            "reason": b.reason,
            "distribution": b.distribution,
        }
        for b in registry.broken
    ]
    doc = {
        "schema": SCHEMA_VERSION,
        "version": version,
        "checks": checks,
        "broken": broken,
    }
    _write(doc, out)


def render_fix_command(
    fix_id: str,
    checks: Sequence[CheckRun],
    reports: Sequence[FixReport],
    out: TextIO,
    blocking: Sequence[CheckRun] = (),
) -> None:
    """``fix ID --json``, whatever happened: ``state`` says which (README.md, "JSON
    output"); the fix reports are in ``fixes`` (``check --fix --json`` puts them
    into the report's document instead)."""
    from shipyard_doctor.render import fixruns

    if blocking:
        state, message = "blocked", fixruns.must_pass_first(fix_id, blocking)
    elif not reports:
        state, message = "nothing-to-fix", fixruns.nothing_to_fix(checks)
    else:
        state, message = "ran", None
    doc = {
        "schema": SCHEMA_VERSION,
        "fix": fix_id,
        "state": state,
        "message": message,
        "blocking": [run.id for run in blocking],
        "checks": [run.to_dict() for run in checks],
        "fixes": [r.to_dict() for r in reports],
    }
    _write(doc, out)


def _write(doc: dict[str, Any], out: TextIO) -> None:
    # One write, not json.dump's many: a Ctrl-C or SIGTERM while it renders leaves
    # the whole document on stdout or none of it, never its first 8 KiB.
    out.write(json.dumps(doc, indent=2, default=str) + "\n")
