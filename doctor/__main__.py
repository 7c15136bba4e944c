"""``python -m shipyard_doctor`` and the ``shipyard-doctor`` console script."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from typing import NoReturn

# Ctrl-C, and SIGTERM (kill PID, a service manager stopping us), from start to exit.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run() -> None:
    """Run the CLI as a process: ASCII on pipes, and a Ctrl-C or SIGTERM at any
    moment (even while the first modules are still importing) ends it with 130 and
    one line, never a traceback."""
    # Starting up allocates hundreds of thousands of objects (module and class
    # objects, dataclass methods) and frees next to none: the cyclic collector's
    # passes over them were ~8 ms of every check. cli.main turns it back on for the
    # commands that run long (deploy, report, fix, ...); see SHORT_COMMANDS there.
    gc.disable()
    try:
        from shipyard_doctor.plainout import ascii_unless_terminal

        ascii_unless_terminal(sys.stdout, sys.stderr)
        from shipyard_doctor.cli import main
        from shipyard_doctor.errors import interrupt

        for signum in SIGNALS:  # see __init__.py
            signal.signal(signum, interrupt)
        _finish(main())
    except KeyboardInterrupt:
        _interrupted()


def _finish(code: int) -> NoReturn:
    """End the process once the command is done: the exit handlers run and the
    standard streams are flushed, then the process ends without the interpreter's
    shutdown. Every file the doctor writes is closed by a ``with`` block before its
    command returns, so nothing needs the shutdown; skipping it saves 10-20 ms of
    every run (freeing ~270 modules one by one, see benchmarks/README.md), leaves
    no moment in which a signal would end the process the signal's way or with a
    traceback, and avoids CPython killing itself with SIGINT when a caught
    KeyboardInterrupt was raised in code run by exec() of a string (a dataclass's
    generated methods, while a module imports)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A reader that closed the pipe early (head, a pager) is no failure: the
        # same rule as ExitCode.for_exception's for BrokenPipeError.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _interrupted() -> NoReturn:
    for signum in SIGNALS:  # a second Ctrl-C just ends it
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        print("shipyard-doctor: interrupted", file=sys.stderr, flush=True)
    # No interpreter shutdown: it would wait for check threads still running.
    os._exit(130)


if __name__ == "__main__":
    run()
