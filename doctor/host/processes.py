"""Processes: every process's name (:func:`names`, the checks' one scan of /proc),
and those a fix may stop: which systemd service runs them, and stopping exactly the
process that was planned for.

A port held by a process that systemd runs (redis-server.service, say) cannot be
freed by killing the process: systemd restarts it, or the next boot does. The unit is
in the process's cgroup path (``0::/system.slice/redis-server.service``), one file
read, no D-Bus and no running systemd needed, so it can be named in a plan and
stopped with ``systemctl stop``; a process outside any system service gets a SIGTERM.
A pid alone may have been reused between planning and applying, so the process is
identified by its pid and start time.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

COMM_LENGTH = 15  # TASK_COMM_LEN - 1: the kernel cuts longer names here


def names(proc: str = "/proc") -> Iterator[tuple[int, str]]:
    """(pid, name) of every process under ``proc``, by pid, named as ps and psutil
    name them: the kernel's comm, or where comm was cut at 15 characters, the
    command's file name that it begins (systemd-networkd's comm is
    "systemd-network"). A process that exits meanwhile is left out."""
    pids = sorted(int(entry) for entry in os.listdir(proc) if entry.isdigit())
    for pid in pids:
        try:  # raw os calls: a file object per process cost as much as the read
            fd = os.open(f"{proc}/{pid}/comm", os.O_RDONLY)
        except OSError:
            continue
        try:
            name = os.read(fd, 64).rstrip(b"\n").decode("utf-8", "replace")
        except OSError:
            continue
        finally:
            os.close(fd)
        if len(name) >= COMM_LENGTH:
            name = _full_name(name, _cmdline(f"{proc}/{pid}"))
        yield pid, name


def details(pid: int, proc: str = "/proc") -> tuple[str, tuple[str, ...], int] | None:
    """(name, command line, real uid) of a process, read as psutil reads them;
    None once it has exited, and for a zombie (it serves nothing any more, and its
    command line is gone: psutil raises ZombieProcess)."""
    directory = f"{proc}/{pid}"
    try:
        with open(f"{directory}/comm", "rb") as file:
            name = file.read().rstrip(b"\n").decode("utf-8", "replace")
        with open(f"{directory}/status", "rb") as file:
            status = dict(line.split(b":", 1) for line in file if b":" in line)
        uid = int(status[b"Uid"].split()[0])
        if status[b"State"].split()[0] in (b"Z", b"X"):  # zombie, or dead
            return None
    except (OSError, KeyError, ValueError, IndexError):
        return None
    argv = _cmdline(directory)
    return _full_name(name, argv) if len(name) >= COMM_LENGTH else name, argv, uid


def _full_name(comm: str, argv: tuple[str, ...]) -> str:
    """The name the kernel cut at 15 characters, whole: the command's file name
    when it begins with what the kernel kept (psutil's rule)."""
    command = os.path.basename(argv[0]) if argv else ""
    return command if command.startswith(comm) else comm


def _cmdline(directory: str) -> tuple[str, ...]:
    """A process's argv ((): a kernel thread, a zombie, or not ours to read)."""
    try:
        with open(f"{directory}/cmdline", "rb") as file:
            data = file.read().decode("utf-8", "replace")
    except OSError:
        return ()
    if not data:
        return ()
    # A program that rewrote its argv into one string ("nginx: master process")
    # has spaces, not NULs, between its words.
    sep = "\0" if data.endswith("\0") else " "
    argv = data.removesuffix(sep).split(sep)
    if sep == "\0" and len(argv) == 1 and " " in argv[0]:
        argv = argv[0].split(" ")
    return tuple(argv)


def cgroup_path(text: str) -> str:
    """The systemd-tracked cgroup of a /proc/<pid>/cgroup text.

    On cgroup v1 and hybrid hosts systemd's own hierarchy is ``name=systemd``; it
    wins over the unified ``0::`` line, which is only ``/`` there, or (Docker's
    cgroupfs driver) still the daemon's service for a container's process. Pure
    cgroup v2 has only the ``0::`` line. "" when neither is present."""
    unified = ""
    for line in text.splitlines():
        _, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not (sep and sep2):
            continue
        if controllers == "name=systemd" and path != "/":
            return path
        if controllers == "":
            unified = path
    return unified


def service_of(text: str) -> str | None:
    """The system service (``redis-server.service``) whose cgroup the process is
    in; None for a login session, a scope (a container), a user's own service
    manager (``user@1000.service``: that needs ``systemctl --user``) or no unit."""
    parts = [p for p in cgroup_path(text).split("/") if p]
    if any(p.startswith("user@") and p.endswith(".service") for p in parts):
        return None
    services = [p for p in parts if p.endswith(".service")]
    return services[-1] if services else None


def process_service(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The system service of a running process; None when it has none or its
    cgroup file cannot be read (it exited, or another user's process)."""
    try:
        return service_of((proc / str(pid) / "cgroup").read_text())
    except OSError:
        return None


def start_time(pid: int) -> float | None:
    """When the process started: with its pid, what identifies it (pids are reused)."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def running(pid: int, started: float | None) -> bool:
    """The very process planned for (not a reused pid) still runs; a zombie has
    already closed its sockets."""
    import psutil

    try:
        proc = psutil.Process(pid)
        same = started is None or proc.create_time() == started
        return same and proc.status() != "zombie"
    except psutil.Error:
        return False


def terminate(pid: int, started: float | None, timeout: float = 10.0) -> None:
    """SIGTERM the very process planned for, and wait until it is gone (its port
    is free then); an error if it outlives ``timeout``."""
    stop(pid, lambda: running(pid, started), timeout)


def stop(pid: int, still_it: Callable[[], bool], timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` while ``still_it()`` says it is the process meant (a reused
    pid is not), and wait until it is gone; TimeoutError if it outlives
    ``timeout``."""
    if not still_it():
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while still_it():
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid} still runs {timeout:.0f} s after SIGTERM")
        time.sleep(0.05)
