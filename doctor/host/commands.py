"""Running external commands: read-only ones for checks (iptables-save, journalctl,
systemctl, ...) and the ones fixes run (:func:`run_step`), each in its own process
group so it can be stopped whole.

Every command is time-bounded and never raises for the usual failures: a missing
binary, a timeout or a non-zero exit are data a check can explain to the user.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from shipyard_doctor.records import record

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@record
class CommandResult:
    """How an external command ended: its exit code and output, or why it did not run
    to completion."""

    argv: tuple[str, ...]
    returncode: int | None  # None: not found or timed out
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # why it did not run to completion

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        if self.error:
            return f"{' '.join(self.argv)}: {self.error}"
        first = (self.stderr or self.stdout).strip().splitlines()
        return f"{' '.join(self.argv)}: exit {self.returncode}" + (
            f": {first[0]}" if first else ""
        )


def which(name: str, path: str) -> str | None:
    """The executable file *name* in the directories of *path* (``:``-separated),
    as ``shutil.which`` finds it, except that an empty entry is no directory: never
    the current one, which a root tool must not run from. (Importing shutil, with
    its compression modules, was 2 ms of every check.)"""
    if os.sep in name:
        return name if _executable(name) else None
    seen = set()
    for directory in path.split(os.pathsep):
        if directory and directory not in seen:
            seen.add(directory)
            candidate = os.path.join(directory, name)
            if _executable(candidate):
                return candidate
    return None


def _executable(path: str) -> bool:
    return os.access(path, os.X_OK) and not os.path.isdir(path)


def run(
    argv: Sequence[str], timeout: float, environ: Mapping[str, str]
) -> CommandResult:
    # Tools such as iptables-save live in sbin, which a normal user's PATH lacks.
    path = f"{environ.get('PATH', '')}:{SYSTEM_PATH}"
    binary = which(argv[0], path)
    if binary is None:
        return CommandResult(tuple(argv), None, error="not installed")
    env = {**environ, "LC_ALL": "C", "PATH": path}
    try:
        done = subprocess.run(
            [binary, *argv[1:]],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), None, error=f"timed out after {timeout:g} s")
    except OSError as exc:
        return CommandResult(tuple(argv), None, error=exc.strerror or str(exc))
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)


# The commands a fix runs (restarts, dhclient, ldconfig, ...): long enough for a
# dockerd restart that waits for its containers to stop (10 s each by default).
STEP_TIMEOUT = 120.0
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for a group being stopped


def run_step(
    argv: Sequence[str],
    timeout: float,
    on_start: Callable[[int], None] | None = None,
) -> CommandResult:
    """Run a command that changes the host, in a process group of its own.

    ``on_start(pgid)`` is called once it runs (the journal records the group). The
    whole group is stopped when the timeout hits or when this process is
    interrupted (KeyboardInterrupt, which SIGTERM becomes in the CLI), so nothing it
    started outlives the fix; the interruption is then raised again."""
    try:
        process = subprocess.Popen(
            _guarded(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its own session and process group
        )
    except OSError as exc:
        return CommandResult(tuple(argv), None, error=exc.strerror or str(exc))
    try:
        if on_start is not None:
            on_start(process.pid)
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process.pid)
        _reap(process)
        return CommandResult(tuple(argv), None, error=f"timed out after {timeout:g} s")
    except BaseException:
        stop_group(process.pid)
        _reap(process)
        raise
    return CommandResult(tuple(argv), process.returncode, stdout, stderr)


# Should this process die without stopping the group (SIGKILL, a crash), the kernel
# sends the group's first process SIGTERM (setpriv --pdeathsig, util-linux), and that
# shell then stops the whole group: the command and everything it started.
_GUARD = 'trap "trap - TERM; kill 0" TERM; "$@" & wait $!'


def _guarded(argv: Sequence[str]) -> list[str]:
    setpriv = which("setpriv", SYSTEM_PATH)
    if setpriv is None:  # undo still stops what is left (journalled process group)
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "sh", "-c", _GUARD, "sh", *argv]


def stop_group(pgid: int, leader_start: int | None = None) -> bool:
    """Stop process group ``pgid``: SIGTERM, then SIGKILL after a grace period.

    ``leader_start`` (from :func:`process_start`) guards against a reused pid when
    the group is stopped by a later process (undo after a crash): a live leader
    that started at another time is another group. While any member is alive its
    pgid cannot be reused, so members without their leader are still the group.
    Returns whether anything was stopped."""
    if not group_alive(pgid):
        return False
    if leader_start is not None:
        started = process_start(pgid)
        if started is not None and started != leader_start:
            return False  # pgid was reused by a new group leader
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + STOP_GRACE
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return True


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is in process group ``pgid``."""
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                stat = _stat_fields(int(entry.name))
                if stat is not None and stat[0] != "Z" and int(stat[2]) == pgid:
                    return True
    return False


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22)."""
    stat = _stat_fields(pid)
    return None if stat is None else int(stat[19])


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid,
    pgrp, ..."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _reap(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=STOP_GRACE)
