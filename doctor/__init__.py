"""shipyard-doctor: diagnose the Docker host problems that break a Shipyard install."""

# The C module, no stubs: `signal` itself (enums) takes long enough to be interrupted.
import _signal  # type: ignore[import-not-found]
import os as _os
import sys as _sys

__version__ = "0.1.0"


def _interrupted_while_starting(signum: int, frame: object) -> None:
    _os.write(2, b"shipyard-doctor: interrupted\n")
    _os._exit(130)


# Started as the program (`python -m shipyard_doctor`: argv[0] is "-m" while the
# package is found; the console script: its own name), a Ctrl-C or SIGTERM during the
# imports that follow ends it quietly with 130; __main__.run hands both to
# errors.interrupt (KeyboardInterrupt) just before main(). Imported as a library:
# nothing changes.
# (Not on "__main__.py": that is also `python -m pytest`, whose Ctrl-C must tear down.)
_argv0 = _sys.argv[0] if _sys.argv else ""
if _argv0 == "-m" or _os.path.basename(_argv0) == "shipyard-doctor":
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
    _signal.signal(_signal.SIGTERM, _interrupted_while_starting)
