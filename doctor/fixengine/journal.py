"""The fix journal: backups before every change, a manifest of what was done, undo.

Layout under ``[fix] journal_dir`` (default /var/lib/shipyard-doctor/journal)::

    lock                       held (flock) by the fix run in progress; names it
    <run>/manifest.json        what each fix did, in order, and whether it was undone
    <run>/files/<n>            the original bytes of each changed file (mode 0600)

Every step is written to the manifest *before* it changes anything (a file's entry
once its backup is safe, a command's entry before it starts, with its process group
once it runs), so a run that was interrupted, killed or crashed mid-fix is left
``applying`` and ``undo`` can still reverse it. Undo restores files byte-identical, in
reverse order, runs the recorded inverse of commands that have one, stops what is
left of an interrupted command's process group, and lists what it cannot reverse.
Restoring never removes a file before its original is back in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shipyard_doctor.errors import DoctorError, ExitCode, UsageError
from shipyard_doctor.fixengine import restore
from shipyard_doctor.fixengine.manifest import (
    CommandEntry,
    Entry,
    FixRecord,
    IrreversibleEntry,
    Manifest,
    read_manifest,
    write_manifest,
)
from shipyard_doctor.host.commands import process_start
from shipyard_doctor.records import replace
from shipyard_doctor.validate import shown

# A fix in one of these states may have changed the host and not reversed it.
UNDOABLE = ("applied", "applying", "rollback-incomplete")


class JournalError(DoctorError):
    exit_code = ExitCode.PROBLEMS


class FixLocked(DoctorError):
    exit_code = ExitCode.LOCKED


class RunJournal:
    """The journal of one fix run; entries are grouped per fix."""

    def __init__(self, root: Path, manifest: Manifest):
        self.root = root
        self.manifest = manifest
        self._fixing = False

    @property
    def run_id(self) -> str:
        return self.manifest.run

    def begin_fix(self, fix_id: str, check_id: str) -> None:
        fixes = (*self.manifest.fixes, FixRecord(fix_id, check_id))
        self._save(replace(self.manifest, fixes=fixes))
        self._fixing = True

    def end_fix(self, status: str, reason: str = "") -> None:
        self._save(
            self._with_current(replace(self._current, status=status, reason=reason))
        )
        self._fixing = False

    def backup(self, path: str) -> None:
        """Keep what ``path`` is now (bytes, link or absence) before it changes; the
        entry is in the manifest before this returns."""
        number = len(list((self.root / "files").iterdir()))
        try:
            entry = restore.backup(path, self.root / "files", f"{number:04d}")
        except restore.BackupError as exc:
            raise JournalError(
                f"cannot back up {path} into the fix journal ({exc.filename}): "
                f"{exc.strerror} (free space there, or set [fix] journal_dir)"
            ) from exc
        self._entry(entry)

    @contextmanager
    def command(
        self,
        argv: Sequence[str],
        inverse: Sequence[str] | None,
        why: str,
        after_undo: Sequence[str] | None = None,
    ) -> Iterator[StepRecord]:
        """Record a command before it runs. The body runs it, reports its process
        group (``record.started(pgid)``) and, when the command ran and failed,
        ``record.failed()``: such a command is dropped from the journal (it changed
        nothing to reverse). One that completes is marked done; one that is
        interrupted, times out or crashes stays ``started``, for undo."""
        entry = CommandEntry(
            tuple(argv),
            tuple(inverse) if inverse else None,
            why,
            tuple(after_undo) if after_undo else None,
            state="started",
        )
        with self._recording(entry) as record:
            yield record

    @contextmanager
    def action(self, what: str) -> Iterator[StepRecord]:
        """Record an in-process change that has no inverse before it runs; the body
        calls ``record.failed()`` when it did not happen."""
        with self._recording(IrreversibleEntry(what)) as record:
            yield record

    @contextmanager
    def _recording(
        self, entry: CommandEntry | IrreversibleEntry
    ) -> Iterator[StepRecord]:
        record = StepRecord(self, self._entry(entry), entry)
        try:
            yield record
        except BaseException:
            if record.dropped:
                self._drop_entry(record.index)
            raise
        if isinstance(record.entry, CommandEntry):
            self._replace_entry(record.index, replace(record.entry, state="done"))

    def record_command(
        self,
        argv: Sequence[str],
        inverse: Sequence[str] | None,
        why: str,
        after_undo: Sequence[str] | None = None,
    ) -> None:
        """Record a command that has already completed (e.g. run in-process)."""
        entry = CommandEntry(
            tuple(argv),
            tuple(inverse) if inverse else None,
            why,
            tuple(after_undo) if after_undo else None,
        )
        self._entry(entry)

    def record_irreversible(self, what: str) -> None:
        self._entry(IrreversibleEntry(what))

    def rollback_current(self) -> tuple[list[str], bool]:
        """Undo what the fix in progress has done so far: the lines to show, and
        whether everything was reversed."""
        return restore.undo_entries(self.root, self._current.entries)

    @property
    def _current(self) -> FixRecord:
        assert self._fixing, "a step ran outside begin_fix/end_fix"
        return self.manifest.fixes[-1]

    def _with_current(self, fix: FixRecord) -> Manifest:
        return replace(self.manifest, fixes=(*self.manifest.fixes[:-1], fix))

    def _entry(self, entry: Entry) -> int:
        entries = (*self._current.entries, entry)
        self._save(self._with_current(replace(self._current, entries=entries)))
        return len(entries) - 1

    def _replace_entry(self, index: int, entry: Entry) -> None:
        entries = list(self._current.entries)
        entries[index] = entry
        fix = replace(self._current, entries=tuple(entries))
        self._save(self._with_current(fix))

    def _drop_entry(self, index: int) -> None:
        entries = self._current.entries[:index] + self._current.entries[index + 1 :]
        self._save(self._with_current(replace(self._current, entries=entries)))

    def _save(self, manifest: Manifest) -> None:
        """Write ``manifest``; only once it is on disk does it become the journal's."""
        _write(self.root / "manifest.json", manifest)
        self.manifest = manifest


class StepRecord:
    """A step's entry while it runs (see :meth:`RunJournal.command`)."""

    def __init__(
        self, journal: RunJournal, index: int, entry: CommandEntry | IrreversibleEntry
    ):
        self.journal, self.index, self.entry = journal, index, entry
        self.dropped = False

    def started(self, pgid: int) -> None:
        """Record the command's process group, so undo can stop what is left of it."""
        if isinstance(self.entry, CommandEntry):
            start = process_start(pgid)
            self.entry = replace(self.entry, pgid=pgid, pgid_start=start)
            self.journal._replace_entry(self.index, self.entry)

    def failed(self) -> None:
        """The step ran and failed, changing nothing: it leaves no entry."""
        self.dropped = True


class Journal:
    def __init__(self, directory: str):
        self.directory = Path(directory)

    @contextmanager
    def run(self, command: Sequence[str]) -> Iterator[RunJournal]:
        """Hold the lock and open a new run directory for the length of a fix run."""
        with self.lock(command):
            run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{os.getpid()}"
            root = self.directory / run_id
            manifest = Manifest(run_id, _now(), tuple(command))
            try:
                # mkdir(parents=True) gives only the leaf the mode: make each level.
                root.mkdir(mode=0o700)
                (root / "files").mkdir(mode=0o700)
                _write(root / "manifest.json", manifest)
            except (OSError, JournalError) as exc:
                _remove_empty_run(root)
                if isinstance(exc, JournalError):
                    raise
                raise _journal_error(root, exc) from exc
            yield RunJournal(root, manifest)

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
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 4096).decode(errors="replace").strip()
                raise FixLocked(
                    f"another fix run is in progress ({holder or 'another process'}); "
                    "wait for it to finish, then run again"
                ) from None
            # Who holds it is a courtesy (unbuffered): a full disk must not stop us.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                holder = f"pid {os.getpid()}: {' '.join(command)}, since {_now()}"
                os.pwrite(fd, holder.encode(), 0)
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def runs(self) -> list[Manifest]:
        """Every recorded run's manifest, oldest first."""
        found = []
        if self.directory.is_dir():
            for entry in sorted(self.directory.iterdir()):
                manifest = read_manifest(entry / "manifest.json")
                if manifest is not None:
                    found.append(manifest)
        return found

    def undo(self, run_id: str | None, command: Sequence[str]) -> tuple[str, list[str]]:
        """Undo one run (the newest not yet undone, if none is named), including a run
        left ``applying`` by an interruption or a crash.

        Returns the run id and the lines to show: what was restored and what could
        not be reversed. When something cannot be restored the run stays undoable
        and a :class:`JournalError` names it."""
        self._pick(run_id)  # nothing to undo (no journal yet): say so, create nothing
        with self.lock(command):
            manifest = self._pick(run_id)
            root = self.directory / manifest.run
            lines: list[str] = []
            fixes = list(manifest.fixes)
            for index in reversed(range(len(fixes))):
                if fixes[index].status not in UNDOABLE:
                    continue
                undone, complete = restore.undo_entries(root, fixes[index].entries)
                lines.extend(undone)
                if not complete:
                    failed = [line for line in undone if line.startswith("FAILED")]
                    _write(
                        root / "manifest.json", replace(manifest, fixes=tuple(fixes))
                    )
                    raise JournalError(
                        f"could not undo fix run {manifest.run} completely: "
                        f"{failed[0] if failed else 'see the journal'}; fix that, "
                        "then run undo again"
                    )
                fixes[index] = replace(fixes[index], status="undone")
            _write(
                root / "manifest.json",
                replace(manifest, fixes=tuple(fixes), undone=True),
            )
            return manifest.run, lines

    def _pick(self, run_id: str | None) -> Manifest:
        candidates = [r for r in self.runs() if r.fixes]
        if run_id is None:
            pending = [r for r in candidates if not r.undone]
            if not pending:
                raise JournalError(f"no fix run to undo in {self.directory}")
            return pending[-1]
        named = [r for r in candidates if r.run == run_id]
        if not named:
            recent = [r.run for r in candidates][-5:]
            known = ", ".join(recent) or f"none recorded in {self.directory}"
            more = " (`shipyard-doctor undo --list` shows all)" if recent else ""
            raise UsageError(f"unknown fix run {shown(run_id)}; runs: {known}{more}")
        if named[0].undone:
            raise JournalError(f"fix run {run_id} was already undone")
        return named[0]


def _write(path: Path, manifest: Manifest) -> None:
    try:
        write_manifest(path, manifest)
    except OSError as exc:
        raise _journal_error(path, exc) from exc


def _journal_error(path: Path, exc: OSError) -> JournalError:
    return JournalError(
        f"cannot write the fix journal {path}: {exc.strerror or exc} "
        "(free space there, or set [fix] journal_dir)"
    )


def _remove_empty_run(root: Path) -> None:
    for leftover in (root / "manifest.json", root / "files", root):
        try:
            if leftover.is_dir():
                leftover.rmdir()
            else:
                leftover.unlink()
        except OSError:
            continue


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
