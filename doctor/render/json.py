"""The --json document (schema documented in README.md, "JSON output")."""

from __future__ import annotations

import json
from typing import Any, TextIO

from shipyard_doctor.model import SCHEMA_VERSION, Report
from shipyard_doctor.registry import Registry


def render_report(report: Report, out: TextIO) -> None:
    json.dump(report.to_dict(), out, indent=2, default=str)
    out.write("\n")


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
    json.dump(doc, out, indent=2)
    out.write("\n")
