"""Exit codes and the user-facing error hierarchy.

Every error a user can cause or meet is a ``DoctorError``: the CLI prints its message
as one line (a traceback only with ``--debug``) and exits with its ``exit_code``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from types import FrameType


class ExitCode(IntEnum):
    """Process exit codes, documented in README.md."""

    OK = 0  # no check failed or errored (warnings allowed)
    PROBLEMS = 1  # at least one check failed or errored (not ignored)
    USAGE = 2  # bad command line or configuration
    NOT_APPLIED = 3  # fixes were planned but not applied (no TTY to ask, no --yes)
    LOCKED = 4  # another fix run holds the journal lock
    INTERNAL = 70  # a bug in shipyard-doctor itself (sysexits EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM

    @classmethod
    def for_exception(cls, exc: BaseException) -> ExitCode:
        """The code for a command ended by ``exc``; :func:`outcome.exit_code` uses
        it, and so does the CLI for argparse's own exits (--help, a usage error)
        before anything else is loaded."""
        if isinstance(exc, DoctorError):
            return exc.exit_code
        if interrupted_by(exc):  # Ctrl-C or SIGTERM, even wrapped by Python
            return cls.INTERRUPTED
        if isinstance(exc, BrokenPipeError):
            return cls.OK  # output went to a pager or head that closed early
        if isinstance(exc, SystemExit):  # argparse: --help, --version, bad usage
            return cls.OK if exc.code in (0, None) else cls.USAGE
        return cls.INTERNAL


class DoctorError(Exception):
    """An error meant for the user: one line saying what is wrong and what to do."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(DoctorError):
    """The command line asks for something that does not exist or does not fit."""


class ConfigError(DoctorError):
    """The configuration file cannot be read, parsed or validated."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a fix was being applied; ``hint`` says how to undo
    what it had done so far."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint


def interrupt(signum: int, frame: FrameType | None) -> None:
    """The handler of Ctrl-C and SIGTERM: a KeyboardInterrupt, but not where it
    would be lost (see :func:`must_wait`): there the same signal comes again 10 ms
    later."""
    if frame is not None and must_wait(frame):
        threading.Timer(0.01, signal.raise_signal, (signum,)).start()
        return
    raise KeyboardInterrupt


# Weak references' callbacks: Python prints what they raise ("Exception ignored
# in") and goes on. A check thread that ends drops out of threading's WeakSet.
_CALLBACK_FILES = ("/_weakrefset.py", "/weakref.py")


def must_wait(frame: FrameType) -> bool:
    """Whether a KeyboardInterrupt raised in *frame* would be lost or do harm: in
    the import machinery (in a module lock's cleanup it is lost, or it leaves a lock
    taken that deadlocks the check threads' imports), in a ``__del__`` or in a weak
    reference's callback (Python prints a traceback, "Exception ignored in", and
    goes on as if no signal had come)."""
    code = frame.f_code
    return (
        code.co_filename.startswith("<frozen importlib")
        or code.co_name == "__del__"
        or code.co_filename.endswith(_CALLBACK_FILES)
    )


def interrupted_by(exc: BaseException) -> bool:
    """``exc`` is a Ctrl-C or SIGTERM (a KeyboardInterrupt), or was raised from one:
    Python wraps what ``__set_name__`` raises (a dataclass field while a module
    imports) in a RuntimeError whose cause it is."""
    cause: BaseException | None = exc
    for _ in range(8):  # a chain of causes is short; never loop on a cycle
        if cause is None:
            return False
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause = cause.__cause__
    return False


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (kill PID, a service manager stopping us) ends what runs inside like
    Ctrl-C: a KeyboardInterrupt, so fix runs stop their commands and stay undoable,
    and a deploy rolls back. Outside the main thread signals are left alone."""
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
