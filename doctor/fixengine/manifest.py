"""The journal's manifest as typed, immutable records, and its JSON form.

One ``manifest.json`` per fix run::

    {"run": "20250101-120000-42", "started": "2025-01-01T12:00:00Z",
     "command": ["shipyard-doctor", "fix", "docker-tcp", "--yes"],
     "undone": false,
     "fixes": [{"fix": "docker-tcp", "check": "docker-tcp", "status": "applied",
                "entries": [{"type": "file", "path": "/etc/docker/daemon.json",
                             "created_dirs": [], "backup": "0000", "mode": 420,
                             "uid": 0, "gid": 0}, ...]}]}

A fix's ``status`` is ``applying`` until it ends (``applied``, ``failed``,
``rolled-back``, ``rollback-incomplete``), then ``undone`` after undo. Entries are
``file`` (a backup: bytes in ``files/<backup>``, a ``link`` target, or ``absent``),
``command`` (``state`` ``started`` until it completes, with its process group) and
``irreversible``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from shipyard_doctor.records import record


@record
class FileEntry:
    """What a file was before a step changed it."""

    path: str
    created_dirs: tuple[str, ...] = ()  # made for it; removed again when empty
    link: str | None = None  # it was a symlink to this
    absent: bool = False  # it did not exist
    backup: str | None = None  # its bytes are in files/<backup>
    mode: int = 0o644
    uid: int = -1
    gid: int = -1

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "file",
            "path": self.path,
            "created_dirs": list(self.created_dirs),
        }
        if self.link is not None:
            doc["link"] = self.link
        elif self.absent:
            doc["absent"] = True
        else:
            doc.update(backup=self.backup, mode=self.mode, uid=self.uid, gid=self.gid)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> FileEntry:
        return cls(
            path=str(doc["path"]),
            created_dirs=tuple(doc.get("created_dirs", ())),
            link=doc.get("link"),
            absent=bool(doc.get("absent", False)),
            backup=doc.get("backup"),
            mode=int(doc.get("mode", 0o644)),
            uid=int(doc.get("uid", -1)),
            gid=int(doc.get("gid", -1)),
        )


@record
class CommandEntry:
    """A command a fix ran (or started: ``state`` stays ``started`` if the run was
    interrupted while it ran)."""

    argv: tuple[str, ...]
    inverse: tuple[str, ...] | None
    why: str
    after_undo: tuple[str, ...] | None = None
    state: Literal["started", "done"] = "done"
    pgid: int | None = None  # its own process group, once started
    pgid_start: int | None = None  # the group leader's start time (clock ticks)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "command",
            "argv": list(self.argv),
            "inverse": list(self.inverse) if self.inverse else None,
            "why": self.why,
            "after_undo": list(self.after_undo) if self.after_undo else None,
            "state": self.state,
        }
        if self.pgid is not None:
            doc.update(pgid=self.pgid, pgid_start=self.pgid_start)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CommandEntry:
        inverse, after = doc.get("inverse"), doc.get("after_undo")
        return cls(
            argv=tuple(doc["argv"]),
            inverse=tuple(inverse) if inverse else None,
            why=str(doc.get("why", "")),
            after_undo=tuple(after) if after else None,
            state="started" if doc.get("state") == "started" else "done",
            pgid=doc.get("pgid"),
            pgid_start=doc.get("pgid_start"),
        )


@record
class IrreversibleEntry:
    """A journalled change made in-process, with no inverse: undo leaves it as it is."""

    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "irreversible", "what": self.what}


Entry = FileEntry | CommandEntry | IrreversibleEntry


def entry_from_dict(doc: dict[str, Any]) -> Entry:
    kind = doc.get("type")
    if kind == "file":
        return FileEntry.from_dict(doc)
    if kind == "command":
        return CommandEntry.from_dict(doc)
    if kind == "irreversible":
        return IrreversibleEntry(str(doc["what"]))
    raise ValueError(f"unknown journal entry type {kind!r}")


@record
class FixRecord:
    """One fix within a run, and what it did, in order."""

    fix: str
    check: str
    status: str = "applying"
    entries: tuple[Entry, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "fix": self.fix,
            "check": self.check,
            "status": self.status,
            "entries": [entry.to_dict() for entry in self.entries],
        }
        if self.reason:
            doc["reason"] = self.reason
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> FixRecord:
        return cls(
            fix=str(doc["fix"]),
            check=str(doc["check"]),
            status=str(doc["status"]),
            entries=tuple(entry_from_dict(e) for e in doc.get("entries", ())),
            reason=str(doc.get("reason", "")),
        )


@record
class Manifest:
    """One fix run."""

    run: str
    started: str
    command: tuple[str, ...]
    fixes: tuple[FixRecord, ...] = ()
    undone: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "started": self.started,
            "command": list(self.command),
            "fixes": [fix.to_dict() for fix in self.fixes],
            "undone": self.undone,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Manifest:
        return cls(
            run=str(doc["run"]),
            started=str(doc["started"]),
            command=tuple(doc.get("command", ())),
            fixes=tuple(FixRecord.from_dict(f) for f in doc.get("fixes", ())),
            undone=bool(doc.get("undone", False)),
        )


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``; None when there is none or it cannot be read."""
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Replace ``path`` atomically; on any failure (a full disk) the old manifest
    stays and no temporary file is left behind."""
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(manifest.to_dict(), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
