"""``python -m shipyard_doctor`` and the ``shipyard-doctor`` console script."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading  # imported up front: the SIGINT handler uses it mid-import

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from types import FrameType
    from typing import NoReturn


def run() -> None:
    """Run the CLI as a process: ASCII on pipes, and a Ctrl-C at any moment (even
    while the first modules are still importing) ends it with 130 and one line,
    never a traceback."""
    # Starting up allocates hundreds of thousands of objects (module and class
    # objects, dataclass methods) and frees next to none: the cyclic collector's
    # passes over them were ~8 ms of every check. cli.main turns it back on for the
    # commands that run long (deploy, report, fix, ...); see SHORT_COMMANDS there.
    gc.disable()
    try:
        from shipyard_doctor.plainout import ascii_unless_terminal

        ascii_unless_terminal(sys.stdout, sys.stderr)
        from shipyard_doctor.cli import main

        signal.signal(signal.SIGINT, _interrupt)  # see __init__.py
        code = main()
    except KeyboardInterrupt:
        _interrupted()
    _finish(code)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C as KeyboardInterrupt, but not inside the import machinery: raised
    there (in a module lock's cleanup) it is lost, or leaves a lock taken that
    deadlocks the check threads' imports. There it comes again 10 ms later."""
    if frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        threading.Timer(0.01, signal.raise_signal, (signal.SIGINT,)).start()
        return
    raise KeyboardInterrupt


def _finish(code: int) -> NoReturn:
    """End the process once the command is done: the exit handlers run and the
    standard streams are flushed, then the process ends without the interpreter's
    teardown (freeing ~270 modules one by one: 10-20 ms of every run, measured in
    benchmarks/README.md). Every file the doctor writes is closed by a ``with``
    block before its command returns, so there is nothing else to finish."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A reader that closed the pipe early (head, a pager) is no failure: the
        # same rule as outcome.exit_code's for BrokenPipeError.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _interrupted() -> NoReturn:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C just ends it
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        print("shipyard-doctor: interrupted", file=sys.stderr, flush=True)
    # No interpreter shutdown: it would wait for check threads still running.
    os._exit(130)


if __name__ == "__main__":
    run()
