"""The fix journal: backups before every change, a manifest of what was done, undo.

Layout under ``[fix] journal_dir`` (default /var/lib/shipyard-doctor/journal)::

    lock                       held (flock) by the fix run in progress; names it
    <run>/manifest.json        what each fix did, in order, and whether it was undone
    <run>/files/<n>            the original bytes of each changed file (mode 0600)

Undo restores files byte-identical, in reverse order, runs the recorded inverse of
commands that have one, and lists what it cannot reverse.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard_doctor.errors import DoctorError, ExitCode
from shipyard_doctor.validate import shown


class JournalError(DoctorError):
    exit_code = ExitCode.PROBLEMS


class FixLocked(DoctorError):
    exit_code = ExitCode.LOCKED


@dataclass
class RunJournal:
    """The journal of one fix run; entries are grouped per fix."""

    root: Path
    manifest: dict[str, Any]
    _fix: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.manifest["run"])

    def begin_fix(self, fix_id: str, check_id: str) -> None:
        self._fix = {
            "fix": fix_id,
            "check": check_id,
            "status": "applying",
            "entries": [],
        }
        self.manifest["fixes"].append(self._fix)
        self._save()

    def end_fix(self, status: str, reason: str = "") -> None:
        assert self._fix is not None
        self._fix["status"] = status
        if reason:
            self._fix["reason"] = reason
        self._save()
        self._fix = None

    def backup(self, path: str) -> None:
        """Keep what ``path`` is now (bytes, link or absence) before it changes."""
        entry: dict[str, Any] = {
            "type": "file",
            "path": path,
            "created_dirs": _missing_dirs(path),
        }
        if os.path.islink(path):
            entry["link"] = os.readlink(path)
        elif os.path.exists(path):
            st = os.stat(path)
            number = sum(1 for _ in (self.root / "files").iterdir())
            backup = self.root / "files" / f"{number:04d}"
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
                shutil.copyfileobj(source, out)
            entry.update(
                backup=backup.name,
                mode=st.st_mode & 0o7777,
                uid=st.st_uid,
                gid=st.st_gid,
            )
        else:
            entry["absent"] = True
        self._entry(entry)

    def record_command(
        self,
        argv: Sequence[str],
        inverse: Sequence[str] | None,
        why: str,
        after_undo: Sequence[str] | None = None,
    ) -> None:
        self._entry(
            {
                "type": "command",
                "argv": list(argv),
                "inverse": list(inverse) if inverse else None,
                "why": why,
                "after_undo": list(after_undo) if after_undo else None,
            }
        )

    def record_irreversible(self, what: str) -> None:
        self._entry({"type": "irreversible", "what": what})

    def _entry(self, entry: dict[str, Any]) -> None:
        assert self._fix is not None, "a step ran outside begin_fix/end_fix"
        self._fix["entries"].append(entry)
        self._save()  # saved after every step: a crash mid-fix can still be undone

    def rollback_current(self) -> list[str]:
        """Undo what the fix in progress has done so far."""
        assert self._fix is not None
        return undo_entries(self.root, self._fix["entries"])

    def _save(self) -> None:
        _write_json(self.root / "manifest.json", self.manifest)


class Journal:
    def __init__(self, directory: str):
        self.directory = Path(directory)

    @contextmanager
    def run(self, command: Sequence[str]) -> Iterator[RunJournal]:
        """Hold the lock and open a new run directory for the length of a fix run."""
        with self.lock(command):
            run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{os.getpid()}"
            root = self.directory / run_id
            # mkdir(parents=True) gives only the leaf the mode: make each level.
            root.mkdir(mode=0o700)
            (root / "files").mkdir(mode=0o700)
            manifest = {
                "run": run_id,
                "started": _now(),
                "command": list(command),
                "fixes": [],
                "undone": False,
            }
            journal = RunJournal(root, manifest)
            journal._save()
            yield journal

    @contextmanager
    def lock(self, command: Sequence[str]) -> Iterator[None]:
        """One fix run (or undo) at a time; the second is refused, told who holds it."""
        try:
            self.directory.mkdir(parents=True, mode=0o700, exist_ok=True)
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(
                f"cannot use the fix journal {self.directory}: {exc.strerror or exc} "
                "(run as root, or set [fix] journal_dir)"
            ) from exc
        with os.fdopen(fd, "r+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = handle.read().strip() or "another process"
                raise FixLocked(
                    f"another fix run is in progress ({holder}); wait for it to "
                    "finish, then run again"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}: {' '.join(command)}, since {_now()}")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded run's manifest, oldest first."""
        found = []
        if self.directory.is_dir():
            for entry in sorted(self.directory.iterdir()):
                manifest = entry / "manifest.json"
                if manifest.is_file():
                    try:
                        found.append(json.loads(manifest.read_text()))
                    except ValueError:
                        continue
        return found

    def undo(self, run_id: str | None, command: Sequence[str]) -> tuple[str, list[str]]:
        """Undo one run (the newest not yet undone, if none is named).

        Returns the run id and the lines to show: what was restored and what could
        not be reversed."""
        with self.lock(command):
            candidates = [r for r in self.runs() if r["fixes"]]
            if run_id is None:
                pending = [r for r in candidates if not r.get("undone")]
                if not pending:
                    raise JournalError(f"no fix run to undo in {self.directory}")
                manifest = pending[-1]
            else:
                named = [r for r in candidates if r["run"] == run_id]
                if not named:
                    known = ", ".join(r["run"] for r in candidates) or "none"
                    raise JournalError(f"no fix run {shown(run_id)} (runs: {known})")
                manifest = named[0]
                if manifest.get("undone"):
                    raise JournalError(f"fix run {run_id} was already undone")
            root = self.directory / manifest["run"]
            lines: list[str] = []
            for fix in reversed(manifest["fixes"]):
                if fix["status"] == "applied":
                    lines.extend(undo_entries(root, fix["entries"]))
                    fix["status"] = "undone"
            manifest["undone"] = True
            _write_json(root / "manifest.json", manifest)
            return manifest["run"], lines


def undo_entries(root: Path, entries: Sequence[dict[str, Any]]) -> list[str]:
    """Reverse ``entries`` (newest first), then run the ``after_undo`` commands (a
    restart, so the service reads the restored files); the lines say what happened."""
    lines = []
    later: list[list[str]] = []
    for entry in reversed(entries):
        if entry.get("after_undo") and entry["after_undo"] not in later:
            later.insert(0, entry["after_undo"])
        kind = entry["type"]
        if kind == "file":
            lines.append(_restore(root, entry))
        elif kind == "command" and entry.get("inverse"):
            argv = entry["inverse"]
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            state = "ran" if done.returncode == 0 else f"FAILED ({done.returncode})"
            lines.append(f"{state}: {' '.join(argv)}")
        elif kind == "command":
            lines.append(f"not reversible: {' '.join(entry['argv'])} ({entry['why']})")
        else:
            lines.append(f"not reversible: {entry['what']}")
    for argv in later:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        state = "ran" if done.returncode == 0 else f"FAILED ({done.returncode})"
        lines.append(f"{state} after restoring: {' '.join(argv)}")
    return lines


def _restore(root: Path, entry: dict[str, Any]) -> str:
    path = entry["path"]
    if os.path.lexists(path):
        os.unlink(path)
    if "link" in entry:
        os.symlink(entry["link"], path)
        result = f"restored link {path} -> {entry['link']}"
    elif entry.get("absent"):
        result = f"removed {path} (it did not exist before)"
    else:
        tmp = f"{path}.shipyard-doctor.undo"
        shutil.copyfile(root / "files" / entry["backup"], tmp)
        os.chmod(tmp, entry["mode"])
        # Not root: the file stays ours; its bytes and mode are still restored.
        with contextlib.suppress(PermissionError):
            os.chown(tmp, entry["uid"], entry["gid"])
        os.replace(tmp, path)
        result = f"restored {path}"
    for directory in reversed(entry.get("created_dirs", ())):
        try:
            os.rmdir(directory)  # only if empty: never remove what others put there
        except OSError:
            break
    return result


def _missing_dirs(path: str) -> list[str]:
    missing = []
    directory = os.path.dirname(os.path.abspath(path))
    while directory and not os.path.exists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    return list(reversed(missing))


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(value, out, indent=2)
    os.replace(tmp, path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
