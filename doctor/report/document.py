"""The report as one document: the checks, the collected sections and the raw files,
redacted (and pseudonymized) part by part, failing closed. Every format is rendered
from this one document, so all formats say the same thing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard_doctor.records import field, record, replace
from shipyard_doctor.report.collect import Section, SectionStatus
from shipyard_doctor.report.pseudonyms import Pseudonymizer
from shipyard_doctor.report.redact import RedactionError, Redactor

REPORT_SCHEMA = 1  # of report.json; see report.schema.json


@record
class ReportDocument:
    """The whole report, which every format is rendered from: its metadata, the host,
    the checks, the sections and the raw files."""

    meta: Mapping[str, Any]
    host: Mapping[str, Any]
    checks: Sequence[Mapping[str, Any]]
    sections: Sequence[Section]
    files: Mapping[str, str] = field(default_factory=dict)  # tarball path -> text

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("ok", "warning", "failure", "skipped", "error"), 0)
        for check in self.checks:
            counts[str(check.get("status"))] = (
                counts.get(str(check.get("status")), 0) + 1
            )
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "kind": "shipyard-doctor-report",
            **self.meta,
            "host": dict(self.host),
            "checks": [dict(c) for c in self.checks],
            "counts": self.counts,
            "sections": [s.to_dict() for s in self.sections],
        }


@record
class Privacy:
    """What the report hides: secrets when redacting, host and user names when
    pseudonymizing, and the words that are no secret."""

    redact: bool
    pseudonymize: bool
    vocabulary: tuple[str, ...] = ()  # words a secret may equal without being replaced
    hostnames: tuple[str, ...] = ()
    users: tuple[str, ...] = ()


def build(
    meta: Mapping[str, Any],
    host: Mapping[str, Any],
    checks: Sequence[Mapping[str, Any]],
    sections: Sequence[Section],
    privacy: Privacy,
) -> tuple[ReportDocument, Redactor | None, Pseudonymizer | None]:
    """The document, the redactor (to check every output once more before it is
    written) and the pseudonymizer (whose mapping stays local)."""
    redactor = None
    if privacy.redact:
        redactor = Redactor(privacy.vocabulary)
        unlearned: dict[str, str] = {}  # section id -> why its secrets are unknown
        for part in (host, *checks):
            redactor.learn(part)
        for section in sections:
            try:
                redactor.learn(_content(section))
            except Exception as exc:  # its secrets are unknown: it cannot go out
                unlearned[section.id] = f"reading it for secrets failed: {_why(exc)}"
        host = _scrub_host(redactor, host)
        checks = [_scrub_check(redactor, c) for c in checks]
        sections = [
            _withheld(s, unlearned[s.id])
            if s.id in unlearned
            else _scrub_section(redactor, s)
            for s in sections
        ]
        meta = {
            **meta,
            "redaction": {
                "enabled": True,
                "summary": redactor.summary(),
                "counts": dict(redactor.counts),
            },
        }
    else:
        meta = {
            **meta,
            "redaction": {
                "enabled": False,
                "summary": "UNREDACTED: this report may contain passwords, keys and "
                "tokens; do not share it publicly",
                "counts": {},
            },
        }
    pseudonymizer = None
    if privacy.pseudonymize:
        users = set(privacy.users)
        pseudonymizer = Pseudonymizer(privacy.hostnames, users)
        host = pseudonymizer.apply_data(host)
        checks = [pseudonymizer.apply_data(c) for c in checks]
        sections = [
            replace(
                s,
                summary=pseudonymizer.apply(s.summary),
                text=pseudonymizer.apply(s.text),
                data=pseudonymizer.apply_data(s.data),
                unreadable=tuple(pseudonymizer.apply(u) for u in s.unreadable),
                files={n: pseudonymizer.apply(t) for n, t in s.files.items()},
            )
            for s in sections
        ]
    meta = {**meta, "pseudonymized": privacy.pseudonymize}
    files = {
        f"raw/{s.id}/{name}": text for s in sections for name, text in s.files.items()
    }
    document = ReportDocument(meta, host, checks, sections, files)
    return document, redactor, pseudonymizer


def _content(section: Section) -> dict[str, Any]:
    return {
        "summary": section.summary,
        "text": section.text,
        "data": section.data,
        "files": list(section.files.values()),
        "unreadable": list(section.unreadable),
    }


def _scrub_host(redactor: Redactor, host: Mapping[str, Any]) -> dict[str, Any]:
    try:
        clean = redactor.scrub_data(dict(host))
        redactor.check(clean, "host summary")
    except (RedactionError, Exception) as exc:
        return {"withheld": f"left out: it could not be redacted ({exc})"}
    return dict(clean)


def _scrub_check(redactor: Redactor, check: Mapping[str, Any]) -> dict[str, Any]:
    try:
        clean = redactor.scrub_data(dict(check))
        redactor.check(clean, f"check {check.get('id')}")
        return dict(clean)
    except Exception as exc:
        return {
            "id": str(check.get("id", "?")),
            "title": str(check.get("title", "")),
            "category": str(check.get("category", "")),
            "status": str(check.get("status", "error")),
            "summary": f"[withheld: this result could not be redacted: {_why(exc)}]",
            "details": [],
            "hints": [],
            "fixes": [],
            "data": {},
        }


def _scrub_section(redactor: Redactor, section: Section) -> Section:
    try:
        clean = replace(
            section,
            summary=redactor.scrub(section.summary),
            text=redactor.scrub(section.text),
            data=redactor.scrub_data(dict(section.data)),
            unreadable=tuple(redactor.scrub(u) for u in section.unreadable),
            files={n: redactor.scrub(t) for n, t in section.files.items()},
        )
        redactor.check(
            json.dumps(_content(clean), default=str), f"section {section.id}"
        )
        return clean
    except Exception as exc:
        return _withheld(section, _why(exc))


def _withheld(section: Section, why: str) -> Section:
    return Section(
        section.id,
        section.title,
        SectionStatus.WITHHELD,
        f"left out: it could not be redacted ({why})",
        duration=section.duration,
    )


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RedactionError) else type(exc).__name__
