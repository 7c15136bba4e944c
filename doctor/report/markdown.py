"""The Markdown report: ready to paste into a GitHub issue.

A summary table of the checks first, then each collected section in a ``<details>``
block. GitHub refuses an issue body over 65,536 characters, so the longest sections
are trimmed (their first lines kept) until the whole fits, and the top says what was
trimmed; report.json and the tarball keep everything.
"""

from __future__ import annotations

import html
import re

from shipyard_doctor.report.document import ReportDocument

LIMIT = 65_536
_RESERVE = 2_000  # for the trim note at the top
MARKS = {"ok": "✓", "warning": "!", "failure": "✗", "error": "✗", "skipped": "-"}


def render_markdown(doc: ReportDocument, limit: int = LIMIT) -> str:
    head = _head(doc)
    bodies = {s.id: s.text for s in doc.sections}
    bodies["checks-details"] = _check_details(doc)
    trimmed: dict[str, int] = {}

    def assemble(note: str) -> str:
        return head + note + _tables(doc) + _blocks(doc, bodies)

    text = assemble("")
    while len(text) > limit - _RESERVE:
        largest = max(bodies, key=lambda k: len(bodies[k]))
        body = bodies[largest]
        over = len(text) - (limit - _RESERVE)
        keep = max(0, min(len(body) // 2, len(body) - over - 200))
        cut = body[:keep].rsplit("\n", 1)[0] if "\n" in body[:keep] else body[:keep]
        removed = len(body) - len(cut)
        trimmed[largest] = trimmed.get(largest, 0) + removed
        bodies[largest] = (
            f"{cut}\n[... {trimmed[largest]:,} characters trimmed here to fit "
            "GitHub's limit; all of it is in report.json and the tarball]"
        )
        text = assemble("")
    if trimmed:
        parts = ", ".join(f"{k} ({n:,} characters)" for k, n in trimmed.items())
        note = (
            f"> **Trimmed** to fit GitHub's {LIMIT:,}-character limit: {parts}. "
            "The full text is in report.json and the tarball (`--format json|tar`).\n\n"
        )
        text = assemble(note)
    return text


def _head(doc: ReportDocument) -> str:
    meta = doc.meta
    redaction = meta["redaction"]
    if redaction["enabled"]:
        line = f"> **Redacted:** {redaction['summary']}."
    else:
        line = f"> **⚠ UNREDACTED:** {redaction['summary']}."
    if meta.get("pseudonymized"):
        line += " Hostnames, IP and MAC addresses and user names are pseudonymized."
    host = doc.host
    facts = " · ".join(
        str(x)
        for x in (
            f"shipyard-doctor {meta.get('version')}",
            meta.get("created"),
            f"stack {host.get('stack', '?')}",
            host.get("os"),
            f"Linux {host.get('kernel')}" if host.get("kernel") else None,
            f"user {host.get('user')}" if host.get("user") else None,
            f"checks from {meta['checks_from']}" if meta.get("checks_from") else None,
        )
        if x
    )
    return f"# shipyard-doctor report\n\n{line}\n\n{_cell(facts)}\n\n"


def _tables(doc: ReportDocument) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in doc.counts.items() if n)
    lines = [
        f"## Checks ({counts or 'none'})",
        "",
        "| check | status | summary |",
        "|---|---|---|",
    ]
    for check in doc.checks:
        status = str(check.get("status", "?"))
        lines.append(
            f"| `{_cell(str(check.get('id')))}` | {MARKS.get(status, '?')} {status} "
            f"| {_cell(str(check.get('summary', '')))} |"
        )
    lines += [
        "",
        "## Collected",
        "",
        "| section | status | summary |",
        "|---|---|---|",
    ]
    for section in doc.sections:
        lines.append(
            f"| {_cell(section.title)} | {section.status.value} "
            f"| {_cell(section.summary)} |"
        )
    unreadable = [
        f"- **{_cell(s.title)}**: {_cell(u)}"
        for s in doc.sections
        for u in s.unreadable
    ]
    if unreadable:
        lines += ["", "### Could not be read", "", *unreadable]
    return "\n".join(lines) + "\n\n"


def _check_details(doc: ReportDocument) -> str:
    out: list[str] = []
    for check in doc.checks:
        if check.get("status") == "ok" and not check.get("details"):
            continue
        out.append(f"{check.get('id')}: {check.get('status')}: {check.get('summary')}")
        out += [f"  - {d}" for d in check.get("details") or ()]
        out += [f"  hint: {h}" for h in check.get("hints") or ()]
        if check.get("fixes"):
            out.append(f"  fixes: {', '.join(check['fixes'])}")
    return "\n".join(out)


def _blocks(doc: ReportDocument, bodies: dict[str, str]) -> str:
    blocks = [_details("Check details", "evidence and hints", bodies["checks-details"])]
    for section in doc.sections:
        blocks.append(
            _details(
                section.title,
                f"{section.status.value}: {section.summary}",
                bodies[section.id],
            )
        )
    return "\n".join(blocks)


def _details(title: str, summary: str, body: str) -> str:
    fence = "`" * max(3, _longest_backticks(body) + 1)
    return (
        f"<details>\n<summary><b>{html.escape(title)}</b>: "
        f"{html.escape(_one_line(summary))}</summary>\n\n"
        f"{fence}text\n{body.rstrip() or '(nothing)'}\n{fence}\n\n</details>\n"
    )


def _longest_backticks(text: str) -> int:
    runs = re.findall(r"`+", text)
    return max((len(r) for r in runs), default=0)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
