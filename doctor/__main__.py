"""``python -m shipyard_doctor`` and the ``shipyard-doctor`` console script."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

# Ctrl-C, and SIGTERM (kill PID, a service manager stopping us), from start to exit.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run() -> None:
    """Run the CLI as a process: ASCII on pipes, and a Ctrl-C or SIGTERM at any
    moment (even while the first modules are still importing) ends it with 130 and
    one line, never a traceback."""
    try:
        from shipyard_doctor.plainout import ascii_unless_terminal

        ascii_unless_terminal(sys.stdout, sys.stderr)
        from shipyard_doctor.cli import main
        from shipyard_doctor.errors import interrupt

        for signum in SIGNALS:  # see __init__.py
            signal.signal(signum, interrupt)
        code = main()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe
                stream.flush()
        # All is said and written, and nothing of ours needs the interpreter's
        # shutdown: a signal during it would end the process the signal's way or
        # with a traceback, and CPython kills itself with SIGINT when a caught
        # KeyboardInterrupt was raised in code run by exec() of a string (a
        # dataclass's generated methods, while a module imports).
        os._exit(code)
    except KeyboardInterrupt:
        _interrupted()


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
