"""The fix model: a fix plans concrete steps; only the engine applies them.

A :class:`Fix` turns a check's result into a :class:`Plan` without changing anything.
Each :class:`Step` can say what it will do (``describe``), show it (``preview``: a
file's full diff), tell when it has nothing left to do (``is_done``), and apply
itself, recording in the journal what undoes it. Fixes never apply steps themselves:
doctor/fixengine/fixrun.py does, with the journal, the lock, verification and rollback
around it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from shipyard_doctor.errors import DoctorError, ExitCode
from shipyard_doctor.host import commands
from shipyard_doctor.records import field, record

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.journal import RunJournal
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result


class FixError(DoctorError):
    """A step failed while being applied; the engine rolls the fix back."""

    exit_code = ExitCode.PROBLEMS


@record
class FixOptions:
    """What the user allowed on the command line, beyond the default safe route."""

    stop_conflicting: bool = False  # ports: stop foreign processes holding a port
    disable_stopped: bool = False  # ports: also `systemctl disable` an enabled unit


class Step:
    """One change to the host."""

    def describe(self) -> str:
        raise NotImplementedError

    def preview(self) -> str:
        """What exactly changes (a diff), shown before anything is applied."""
        return ""

    def is_done(self) -> bool:
        """True when the host is already in the state this step would create."""
        return False

    def apply(self, journal: RunJournal) -> None:
        raise NotImplementedError


@record
class WriteFile(Step):
    """Write a whole file (atomically); the journal keeps the original bytes."""

    path: str
    content: str
    mode: int | None = None  # None: keep the file's mode (0644 for a new file)

    def describe(self) -> str:
        verb = "change" if os.path.lexists(self.path) else "create"
        return f"{verb} {self.path}"

    def _current(self) -> str | None:
        try:
            return Path(self.path).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def preview(self) -> str:
        import difflib  # a plan's diff: not needed to discover or run the checks

        old = self._current() or ""
        diff = difflib.unified_diff(
            old.splitlines(keepends=True),
            self.content.splitlines(keepends=True),
            fromfile=self.path if os.path.lexists(self.path) else "/dev/null",
            tofile=self.path,
        )
        return "".join(
            line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
            for line in diff
        )

    def is_done(self) -> bool:
        return not os.path.islink(self.path) and self._current() == self.content

    def apply(self, journal: RunJournal) -> None:
        mode = self.mode
        if mode is None:
            try:
                mode = os.stat(self.path).st_mode & 0o7777
            except OSError:
                mode = 0o644
        journal.backup(self.path)
        _atomic(self.path, lambda tmp: Path(tmp).write_text(self.content), mode)


@record
class Symlink(Step):
    """Create (or point) a symlink; the journal keeps what was there before."""

    path: str
    target: str

    def describe(self) -> str:
        return f"link {self.path} -> {self.target}"

    def is_done(self) -> bool:
        return os.path.islink(self.path) and os.readlink(self.path) == self.target

    def apply(self, journal: RunJournal) -> None:
        journal.backup(self.path)
        _atomic(self.path, lambda tmp: os.symlink(self.target, tmp), None)


@record
class RunCommand(Step):
    """Run a command; ``inverse`` (if any) is what ``undo`` runs to reverse it.

    ``after_undo`` is for commands that make changed files take effect (a daemon
    restart): undo (and rollback) runs it once all of the fix's files are restored,
    so the service starts again from the restored files."""

    argv: tuple[str, ...]
    why: str
    inverse: tuple[str, ...] | None = None
    after_undo: tuple[str, ...] | None = None
    timeout: float = 120.0
    done_when: Callable[[], bool] | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"run: {_shell(self.argv)}  ({self.why})"

    def is_done(self) -> bool:
        return self.done_when() if self.done_when is not None else False

    def apply(self, journal: RunJournal) -> None:
        # Recorded before it starts, with its process group once it runs: an
        # interrupted run can then be undone, and what the command started stopped.
        with journal.command(
            self.argv, self.inverse, self.why, self.after_undo
        ) as record:
            done = commands.run_step(self.argv, self.timeout, on_start=record.started)
            if done.returncode is None and done.error.startswith("timed out"):
                raise FixError(f"{_shell(self.argv)} did not finish: {done.error}")
            if done.returncode is None:
                record.failed()
                raise FixError(f"{_shell(self.argv)} did not run: {done.error}")
            if done.returncode != 0:
                record.failed()
                output = (done.stderr or done.stdout).strip().splitlines()
                tail = f": {output[-1]}" if output else ""
                raise FixError(f"{_shell(self.argv)} exited {done.returncode}{tail}")


@record
class Action(Step):
    """An in-process change (e.g. removing a container through the Docker API) that
    has no automatic inverse; undo lists it as not reversible."""

    what: str
    run: Callable[[], None] = field(compare=False)
    done_when: Callable[[], bool] | None = field(default=None, compare=False)

    def describe(self) -> str:
        return self.what

    def is_done(self) -> bool:
        return self.done_when() if self.done_when is not None else False

    def apply(self, journal: RunJournal) -> None:
        with journal.action(self.what) as record:  # journalled before it runs
            try:
                self.run()
            except Exception as exc:
                record.failed()
                raise FixError(f"{self.what}: {type(exc).__name__}: {exc}") from exc


@record
class Plan:
    """What a fix would do on this host. ``steps`` empty: nothing it can do here,
    and ``summary`` says why (or what the user must do by hand)."""

    fix_id: str
    check_id: str
    summary: str
    steps: tuple[Step, ...] = ()
    risk: str = ""  # e.g. restarting Docker stops containers without live-restore
    notes: tuple[str, ...] = ()  # what changes for the user (a new URL, ...)
    manual: tuple[str, ...] = ()  # commands the user must run elsewhere

    @property
    def pending(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if not step.is_done())


class Fix:
    """Base class of every fix (built-in or third-party)."""

    id: ClassVar[str]
    title: ClassVar[str]
    repairs: ClassVar[tuple[str, ...]]

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        """The steps that would repair ``result`` on ``host``. Must change nothing."""
        raise NotImplementedError


def _atomic(path: str, make: Callable[[str], object], mode: int | None) -> None:
    """Create ``path`` through a temporary name in its directory and a rename, so a
    crash never leaves a half-written file behind."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.shipyard-doctor.tmp")
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        make(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # no half-written temporary file stays behind
        if isinstance(exc, OSError) and exc.filename == tmp:
            # Name the file being changed, not our temporary name for it.
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise


def _shell(argv: Sequence[str]) -> str:
    import shlex

    return shlex.join(argv)
