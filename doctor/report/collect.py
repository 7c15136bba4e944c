"""Collectors and how they run: each in its own daemon thread with its own timeout.

A collector is a small function ``collect(host, context) -> Found``. Whatever it does
(return, raise, hang) becomes a :class:`Section`: a hung collector is recorded as
``timeout`` and the others are still reported, like the check runner does for checks.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.records import field, mutable_record, record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host


class SectionStatus(StrEnum):
    OK = "ok"
    PARTIAL = "partial"  # collected, but some of it could not be read
    SKIPPED = "skipped"  # nothing to collect here (no Docker, no systemd, ...)
    ERROR = "error"  # the collector failed
    TIMEOUT = "timeout"  # the collector did not finish within its timeout
    WITHHELD = "withheld"  # collected but left out: it could not be redacted


@mutable_record
class Found:
    """What one collector found: a body for people, data for machines, raw files."""

    summary: str = ""
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name -> raw content
    unreadable: list[str] = field(default_factory=list)  # "what: why"
    status: SectionStatus | None = None  # None: ok, or partial if unreadable

    def cannot_read(self, what: str, why: str) -> None:
        self.unreadable.append(f"{what}: {why}")


@record
class CollectContext:
    """What every collector gets: the log limits, and each container's stack."""

    log_lines: int
    log_bytes: int  # per log, after the line cap
    stack_containers: Mapping[str, str]  # container name -> stack name, all stacks


Collect = Callable[["Host", CollectContext], Found]


@record
class Collector:
    """A collector of ``report``: its section's id and title, and its function."""

    id: str
    title: str
    collect: Collect


@record
class Section:
    """One collector's part of the report: how it went, a summary, text for people,
    data for machines and raw files."""

    id: str
    title: str
    status: SectionStatus
    summary: str
    text: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "unreadable": list(self.unreadable),
            "text": self.text,
            "data": dict(self.data),
            "files": sorted(self.files),
            "duration_ms": round(self.duration * 1000),
        }


def run_collectors(
    collectors: Sequence[Collector],
    host: Host,
    context: CollectContext,
    timeout: float,
    meanwhile: Callable[[], None] | None = None,
) -> list[Section]:
    """Run every collector at once; each gets *timeout* seconds from the start.
    *meanwhile* (running the checks) is called while they work."""
    boxes: dict[str, list[Section]] = {c.id: [] for c in collectors}
    started = time.monotonic()

    def work(collector: Collector) -> None:
        boxes[collector.id].append(_call(collector, host, context))

    threads = [
        threading.Thread(target=work, args=(c,), name=f"report:{c.id}", daemon=True)
        for c in collectors
    ]
    for thread in threads:
        thread.start()
    if meanwhile is not None:
        meanwhile()
    sections = []
    for collector, thread in zip(collectors, threads, strict=True):
        thread.join(max(0.0, started + timeout - time.monotonic()))
        if boxes[collector.id]:
            sections.append(boxes[collector.id][0])
            continue
        sections.append(
            Section(
                collector.id,
                collector.title,
                SectionStatus.TIMEOUT,
                f"timed out after {timeout:g} s; left out (raise [report] timeout "
                "if this host is just slow)",
                duration=time.monotonic() - started,
            )
        )
    return sections


def _call(collector: Collector, host: Host, context: CollectContext) -> Section:
    began = time.monotonic()
    try:
        found = collector.collect(host, context)
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return Section(
            collector.id,
            collector.title,
            SectionStatus.ERROR,
            f"collector failed: {type(exc).__name__}: {exc} "
            f"(at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}; please report)",
            duration=time.monotonic() - began,
        )
    status = found.status or (
        SectionStatus.PARTIAL if found.unreadable else SectionStatus.OK
    )
    return Section(
        collector.id,
        collector.title,
        status,
        found.summary,
        found.text,
        found.data,
        found.files,
        tuple(found.unreadable),
        time.monotonic() - began,
    )


def read_text(path: str, found: Found, limit: int = 256 * 1024) -> str | None:
    """A file's text for the report, or None with the reason noted in *found*
    (a missing file is not noted: most of the files asked for are optional)."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    except OSError as exc:
        found.cannot_read(path, _reason(exc))
        return None
    text = data[:limit].decode(errors="replace")
    if len(data) > limit:
        text += f"\n[... cut at {limit} bytes]\n"
    return text


def _reason(exc: OSError) -> str:
    why = (exc.strerror or str(exc)).lower()
    if isinstance(exc, PermissionError):
        why += " (run as root to include it)"
    return why


def tail(text: str, lines: int, limit: int) -> tuple[str, int]:
    """The last *lines* lines of *text*, at most *limit* bytes; and how many lines
    were dropped."""
    all_lines = text.splitlines()
    kept = all_lines[-lines:] if lines else []
    while kept and len("\n".join(kept).encode()) > limit:
        kept = kept[1:]
    return "\n".join(kept), len(all_lines) - len(kept)
