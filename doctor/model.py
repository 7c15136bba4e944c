"""The result model shared by checks, the runner, the renderers and (later) fixes.

A check is a small class with declarative attributes and one ``run(host)`` method
that returns a :class:`Result`. The runner wraps that into a :class:`CheckRun`, the
one record every renderer consumes. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from shipyard_doctor.records import field, mutable_record, record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

CHECK_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILURE = "failure"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def is_problem(self) -> bool:
        """Failures and errors make the run fail; warnings and skips do not."""
        return self in (Status.FAILURE, Status.ERROR)


class Evidence(Protocol):
    """What a check found, typed: a frozen dataclass with enumerated states (never
    sentences to parse). Fixes read its fields; ``to_data()`` is the result's JSON
    ``data``."""

    def to_data(self) -> dict[str, Any]: ...


K = TypeVar("K", bound=Enum)


@record
class Problem(Generic[K]):
    """One thing a check found wrong: its kind (what fixes read), its status and the
    sentence the check wrote for the user."""

    kind: K
    text: str
    status: Status = Status.FAILURE


@mutable_record
class Findings(Generic[K]):
    """What a check collects while it looks: problems (in the order found), evidence
    lines and hints (each once)."""

    problems: list[Problem[K]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def add(self, problem: Problem[K], *hints: str, detail: bool = False) -> None:
        self.problems.append(problem)
        if detail:
            self.details.append(problem.text)
        for text in hints:
            self.hint(text)

    def hint(self, text: str) -> None:
        if text not in self.hints:
            self.hints.append(text)

    def result(self, evidence: Evidence, noun: str = "") -> Result:
        """The failure (a warning when no problem is worse) that the problems make:
        the first of the worst ones, and how many more there are."""
        failing = any(p.status is Status.FAILURE for p in self.problems)
        worst = Status.FAILURE if failing else Status.WARNING
        first = next(p.text for p in self.problems if p.status is worst)
        return Result(
            worst,
            and_more(first, len(self.problems) - 1, noun),
            tuple(self.details),
            tuple(self.hints),
            evidence=evidence,
        )


def and_more(first: str, more: int, noun: str = "") -> str:
    """A summary line: the first problem, then how many others there are
    ("... (and 2 more problems)", or "(and 2 more)" without a noun)."""
    if more <= 0:
        return first
    what = f" {noun}{'s' if more > 1 else ''}" if noun else ""
    return f"{first} (and {more} more{what})"


@record
class Result:
    """What one check found.

    ``details`` are the evidence (which process, file, socket, rule was looked at),
    ``hints`` the next steps for the user, ``evidence`` the typed findings fixes
    read, ``data`` their machine-readable form for ``--json`` (made from
    ``evidence`` when there is one). ``fixes`` is filled in by the engine from the
    fixes that are installed and declare they repair this check.
    """

    status: Status
    summary: str
    details: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    evidence: Evidence | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.evidence is not None and not self.data:
            object.__setattr__(self, "data", self.evidence.to_data())

    @classmethod
    def ok(cls, summary: str, **kw: Any) -> Result:
        return cls(Status.OK, summary, **_tuples(kw))

    @classmethod
    def warning(cls, summary: str, **kw: Any) -> Result:
        return cls(Status.WARNING, summary, **_tuples(kw))

    @classmethod
    def failure(cls, summary: str, **kw: Any) -> Result:
        return cls(Status.FAILURE, summary, **_tuples(kw))

    @classmethod
    def skipped(cls, summary: str, **kw: Any) -> Result:
        return cls(Status.SKIPPED, summary, **_tuples(kw))

    @classmethod
    def error(cls, summary: str, **kw: Any) -> Result:
        return cls(Status.ERROR, summary, **_tuples(kw))


def _tuples(kw: dict[str, Any]) -> dict[str, Any]:
    for name in ("details", "hints", "fixes"):
        if name in kw:
            kw[name] = tuple(kw[name])
    return kw


class Check:
    """Base class of every check (built-in or third-party).

    Subclasses set the class attributes and implement :meth:`run`. A check reads the
    host through ``host`` only; it never writes, prints, prompts or calls a fix.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    category: ClassVar[str] = "general"
    requires: ClassVar[tuple[str, ...]] = ()
    # Checks whose failure this one's follows from (docker-tcp cannot answer while
    # docker-daemon is down). Unlike ``requires`` the check still runs (its findings
    # are in --json and -v), but while one of them fails the default view says so in
    # one line instead of repeating the failure in this check's words.
    presumes: ClassVar[tuple[str, ...]] = ()

    def run(self, host: Host) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError


@record
class CheckRun:
    """One check as the user sees it: its identity, its result and how it went."""

    id: str
    title: str
    category: str
    result: Result
    duration: float = 0.0
    ignored: bool = False
    presumes: tuple[str, ...] = ()  # the check's ``presumes``, for the view

    @property
    def status(self) -> Status:
        return self.result.status

    @property
    def fails_run(self) -> bool:
        return self.result.status.is_problem and not self.ignored

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "status": r.status.value,
            "summary": r.summary,
            "details": list(r.details),
            "hints": list(r.hints),
            "fixes": list(r.fixes),
            "data": dict(r.data),
            "ignored": self.ignored,
            "duration_ms": round(self.duration * 1000),
        }


SCHEMA_VERSION = 1  # of the --json document; bump on any incompatible change


@record
class Report:
    """A whole ``check`` run: what every renderer (and later ``report``) consumes."""

    tool_version: str
    host: Mapping[str, Any]
    runs: tuple[CheckRun, ...]

    @property
    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for run in self.runs:
            counts[run.status.value] += 1
        return counts

    @property
    def failed(self) -> bool:
        return any(run.fails_run for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "version": self.tool_version,
            "host": dict(self.host),
            "checks": [run.to_dict() for run in self.runs],
            "counts": self.counts,
            "ok": not self.failed,
        }
