"""Backing up a file before a fix changes it, and reversing journal entries.

Restoring never removes what is there before the original is back: the backup is
copied next to the file and renamed over it (one atomic step), a file already equal
to its backup is left alone (a write that failed on a read-only mount changed
nothing), and a restore that fails says which file, keeping its backup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from shipyard_doctor.fixengine.manifest import CommandEntry, Entry, FileEntry
from shipyard_doctor.host import commands


class BackupError(OSError):
    """The backup of a file could not be written into the journal."""


def backup(path: str, files: Path, name: str) -> FileEntry:
    """Keep what ``path`` is now (bytes, link or absence) as ``files/name``."""
    created = tuple(_missing_dirs(path))
    if os.path.islink(path):
        return FileEntry(path, created, link=os.readlink(path))
    if not os.path.exists(path):
        return FileEntry(path, created, absent=True)
    st = os.stat(path)
    target = files / name
    with open(path, "rb") as source:  # cannot read it: that error names ``path``
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink()  # a partial copy would take the manifest's space
            raise BackupError(exc.errno, exc.strerror, str(target)) from exc
    return FileEntry(
        path,
        created,
        backup=name,
        mode=st.st_mode & 0o7777,
        uid=st.st_uid,
        gid=st.st_gid,
    )


def undo_entries(root: Path, entries: Sequence[Entry]) -> tuple[list[str], bool]:
    """Reverse ``entries`` (newest first), then run the ``after_undo`` commands (a
    restart, so the service reads the restored files). Returns the lines that say
    what happened, and whether everything was reversed."""
    lines: list[str] = []
    complete = True
    later: list[tuple[str, ...]] = []
    for entry in reversed(entries):
        if isinstance(entry, CommandEntry):
            if entry.after_undo and entry.after_undo not in later:
                later.insert(0, entry.after_undo)
            lines.extend(_undo_command(entry))
        elif isinstance(entry, FileEntry):
            try:
                lines.append(restore_file(root, entry))
            except OSError as exc:
                complete = False
                kept = root / "files" / entry.backup if entry.backup else None
                lines.append(
                    f"FAILED to restore {entry.path}: {exc.strerror or exc}"
                    + (f" (the original is kept in {kept})" if kept else "")
                )
        else:
            lines.append(f"not reversible: {entry.what}")
    for argv in later:
        done = commands.run_step(argv, timeout=commands.STEP_TIMEOUT)
        state = "ran" if done.ok else f"FAILED ({done.returncode})"
        lines.append(f"{state} after restoring: {' '.join(argv)}")
    return lines, complete


def _undo_command(entry: CommandEntry) -> list[str]:
    lines = []
    # Interrupted while this command ran: stop what is left of its process group.
    interrupted = entry.state == "started" and entry.pgid is not None
    if interrupted and commands.stop_group(entry.pgid or 0, entry.pgid_start):
        lines.append(
            f"stopped process group {entry.pgid} of the interrupted "
            f"{' '.join(entry.argv)}"
        )
    if entry.inverse:
        done = commands.run_step(entry.inverse, timeout=commands.STEP_TIMEOUT)
        state = "ran" if done.ok else f"FAILED ({done.returncode})"
        lines.append(f"{state}: {' '.join(entry.inverse)}")
    else:
        lines.append(f"not reversible: {' '.join(entry.argv)} ({entry.why})")
    return lines


def restore_file(root: Path, entry: FileEntry) -> str:
    """Put ``entry.path`` back as it was; the line says what was done."""
    path = entry.path
    if entry.link is not None:
        if os.path.islink(path) and os.readlink(path) == entry.link:
            result = f"{path} unchanged"
        else:
            _replace(path, lambda tmp: os.symlink(entry.link or "", tmp))
            result = f"restored link {path} -> {entry.link}"
    elif entry.absent:
        if os.path.lexists(path):
            os.unlink(path)  # it did not exist: removing it *is* restoring it
        result = f"removed {path} (it did not exist before)"
    else:
        original = root / "files" / str(entry.backup)
        if _same(path, original, entry):
            result = f"{path} unchanged"
        else:

            def write(tmp: str) -> None:
                shutil.copyfile(original, tmp)
                os.chmod(tmp, entry.mode)
                # Not root: the file stays ours; its bytes and mode are restored.
                with contextlib.suppress(PermissionError):
                    os.chown(tmp, entry.uid, entry.gid)

            _replace(path, write)
            result = f"restored {path}"
    for directory in reversed(entry.created_dirs):
        try:
            os.rmdir(directory)  # only if empty: never remove what others put there
        except OSError:
            break
    return result


def _replace(path: str, make: Callable[[str], None]) -> None:
    """Make the new ``path`` under a temporary name beside it, then rename it over
    the old one: the old file is there until the new one is complete."""
    tmp = os.path.join(
        os.path.dirname(path) or ".", f".{os.path.basename(path)}.shipyard-doctor.undo"
    )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        make(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _same(path: str, original: Path, entry: FileEntry) -> bool:
    """``path`` is a regular file with the backup's bytes and mode."""
    try:
        if os.path.islink(path) or (os.stat(path).st_mode & 0o7777) != entry.mode:
            return False
        with open(path, "rb") as now, open(original, "rb") as before:
            while True:
                a, b = now.read(65536), before.read(65536)
                if a != b:
                    return False
                if not a:
                    return True
    except OSError:
        return False


def _missing_dirs(path: str) -> list[str]:
    missing = []
    directory = os.path.dirname(os.path.abspath(path))
    while directory and not os.path.exists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    return list(reversed(missing))
