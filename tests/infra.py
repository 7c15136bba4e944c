"""Real infrastructure for the shipyard-doctor tests.

shipyard-doctor diagnoses Docker hosts, so its tests need real ones: network
namespaces that act as isolated "hosts", dockerd daemons running inside them,
real processes listening on the ports Shipyard wants, a socket that hangs like a
wedged daemon, and a virtualenv an unprivileged user can run.  Nothing here is a
mock; everything is torn down by the caller (the fixtures in conftest.py) even
when a test fails.

Ground rules that shape this module:

* Nothing is configured in the root network namespace: every address, route,
  bridge and iptables rule lives in a namespace made by :class:`Netns`.
* Programs enter a namespace with ``nsenter --net=PATH`` and not with
  ``ip netns exec``: the latter remounts /sys in a private mount namespace,
  which hides the cgroup mounts, and dockerd then dies with
  "Devices cgroup isn't mounted".
* Every temporary directory is ``/tmp/sdt-<kind><owner-pid>-<random>`` and every
  namespace ``sdt-<owner-pid>-<random>``, so :func:`reap_stale` can clean up after
  a test run that was killed with SIGKILL, without touching anything that belongs
  to a run that is still alive.
* Processes are stopped by pid, and only the ones this module started (or that
  it can attribute to a daemon it started by that daemon's private paths).

Apart from ``docker`` (the SDK, a dependency of the project itself, imported
lazily) this module uses only the standard library, so benchmarks and scripts can
use it without pytest.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import http.client
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

if TYPE_CHECKING:
    import docker

__all__ = [
    "STANDIN_IMAGE",
    "DockerHost",
    "DockerHostSnapshot",
    "Dockerd",
    "DockerdError",
    "HangingUnixServer",
    "InfraMissing",
    "Listeners",
    "ListeningSocket",
    "ManagedProcess",
    "Netns",
    "as_nobody_argv",
    "become_subreaper",
    "build_busybox_image",
    "list_netns",
    "listening_sockets",
    "log_tail",
    "make_unprivileged_venv",
    "reap_daemon_zombies",
    "reap_stale",
    "require_root",
    "require_tools",
    "run_as_nobody",
    "start_redis",
    "start_tcp_listener",
    "stop_process",
    "tag_image",
    "timed",
    "wait_listening",
]

#: Where every temporary directory goes.  Deliberately not $TMPDIR: dockerd and
#: containerd put unix sockets under their roots and sun_path is 108 bytes.
TMP = Path("/tmp")
#: Prefix of every namespace and temporary directory this module creates.
PREFIX = "sdt"
#: The tag of the busybox stand-in image.
STANDIN_IMAGE = "shipyard-doctor/standin:latest"

#: A PATH that finds the tools in /usr/sbin even when pytest runs with a user PATH.
_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Debian package that provides each external tool, for the InfraMissing message.
TOOL_PACKAGES: dict[str, str] = {
    "ip": "iproute2",
    "ss": "iproute2",
    "nsenter": "util-linux",
    "setpriv": "util-linux",
    "dockerd": "docker.io",
    "docker-proxy": "docker.io",
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "busybox": "busybox-static",
    "redis-server": "redis-server",
    "docker-registry": "docker-registry",
    "gcc": "gcc",
}

_MNT_DETACH = 2
_PR_SET_CHILD_SUBREAPER = 36
#: Process names (as in /proc/PID/stat, 15 chars max) of the daemon-side
#: processes that end up as our children once we are a subreaper.
_DAEMON_COMMS = frozenset({"containerd-shim", "containerd", "runc", "docker-proxy"})


def in_ci() -> bool:
    """True when running under CI (``CI=true``, as CI sets it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(message: str) -> NoReturn:
    """Something a test needs is not on this machine: skip, saying what to install,
    or fail under CI=true, where .ci/run installs everything and absence is a bug."""
    import pytest

    if in_ci():
        pytest.fail(
            f"infrastructure missing (CI=true, so this fails): {message}", pytrace=False
        )
    pytest.skip(f"infrastructure missing: {message}")


class InfraMissing(Exception):
    """Something the tests need is not on this machine.

    The message says what is missing and how to install it, e.g.
    ``"dockerd not found: apt-get install docker.io"``.  conftest.py turns it into
    a skip on a developer machine and into a failure under ``CI=true``, so CI can
    never go green by silently skipping the real tests.
    """


class DockerdError(RuntimeError):
    """A test dockerd failed to start or to stop; the message has its log tail."""


# --------------------------------------------------------------------------
# Preconditions
# --------------------------------------------------------------------------


def require_root() -> None:
    """Raise InfraMissing unless running as root.

    Network namespaces, dockerd, mounts and setpriv all need real root.
    """
    if os.geteuid() != 0:
        raise InfraMissing(
            "root is required (network namespaces, dockerd, mounts): "
            "run the tests as root, e.g. sudo -E python3 -m pytest"
        )


def _which(name: str) -> str | None:
    """shutil.which with the sbin directories searched too."""
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=f"{path}:{_SEARCH_PATH}" if path else _SEARCH_PATH)


def require_tools(*names: str) -> dict[str, str]:
    """Return {name: absolute path} or raise InfraMissing naming every missing tool.

    All missing tools are reported at once so one apt-get line fixes them all.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        path = _which(name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        packages = sorted({TOOL_PACKAGES.get(n, n) for n in missing})
        raise InfraMissing(
            f"{', '.join(missing)} not found: apt-get install {' '.join(packages)}"
        )
    return found


def _is_static_elf(path: Path) -> bool:
    """True if *path* is an ELF executable without a PT_INTERP (dynamic loader).

    The busybox stand-in image holds nothing but busybox, so a dynamically
    linked busybox (Debian package ``busybox``) would not run in it.
    """
    with path.open("rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF":
            return False
        is64 = header[4] == 2
        endian = "<" if header[5] == 1 else ">"
        if is64:
            (phoff,) = struct.unpack_from(endian + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
        else:
            (phoff,) = struct.unpack_from(endian + "I", header, 28)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


class ManagedProcess(subprocess.Popen[bytes]):
    """A Popen whose output goes to a log file and that may own temp dirs.

    :func:`stop_process` removes ``owned_dirs`` after the process is gone, so a
    listener's scratch directory lives exactly as long as the listener.
    """

    log_path: Path
    owned_dirs: list[Path]
    #: Every live instance, so :func:`reap_daemon_zombies` never steals the
    #: exit status that one of them is still waiting for.
    registry: ClassVar[weakref.WeakSet[ManagedProcess]] = weakref.WeakSet()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ManagedProcess.registry.add(self)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop *proc* by its pid: SIGTERM, wait, SIGKILL, wait.  Idempotent.

    Popen.send_signal refuses to signal a process it has already reaped, so a
    recycled pid can never be hit.  Temp dirs owned by a ManagedProcess are
    removed afterwards.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    for d in getattr(proc, "owned_dirs", ()):
        shutil.rmtree(d, ignore_errors=True)


def log_tail(path: Path | None, lines: int = 40) -> str:
    """The last *lines* lines of a log file, for error messages."""
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    comm: str
    state: str
    starttime: int
    cmdline: str
    cgroup: str


def _read_proc(pid: int) -> _Proc | None:
    """One /proc entry, or None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split at the last ')'.
    head, tail = stat.rsplit(")", 1)
    rest = tail.split()
    return _Proc(
        pid=pid,
        ppid=int(rest[1]),
        comm=head.split("(", 1)[1],
        state=rest[0],
        starttime=int(rest[19]),
        cmdline=cmdline.decode(errors="replace").strip(),
        cgroup=cgroup,
    )


def _process_table() -> dict[int, _Proc]:
    table: dict[int, _Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _read_proc(int(entry))
            if proc is not None:
                table[proc.pid] = proc
    return table


def _descendants(roots: Iterable[int], table: Mapping[int, _Proc]) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        for child in children.get(pid, ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _kill_and_wait(victims: Mapping[int, int], timeout: float = 10.0) -> list[int]:
    """SIGKILL each (pid -> starttime) that is still that same process; wait.

    The start time guards against pid reuse.  Returns the pids that are still
    alive (neither gone nor a zombie) after *timeout*.
    """

    def same(pid: int, start: int) -> bool:
        proc = _read_proc(pid)
        return proc is not None and proc.starttime == start and proc.state != "Z"

    for pid, start in victims.items():
        if same(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    alive = [pid for pid, start in victims.items() if same(pid, start)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if same(pid, victims[pid])]
    return alive


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants.

    containerd's shims daemonize (their parent exits), so they are re-parented
    to the nearest subreaper, or else to pid 1.  On this VM pid 1 is not an init
    that reaps, so every exited shim would linger as a zombie
    ("[containerd-shim] <defunct>") forever.  As a subreaper the test process
    inherits them and :func:`reap_daemon_zombies` collects them.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def reap_daemon_zombies(extra: Mapping[int, int] | None = None) -> int:
    """waitpid() zombie children that are daemon-side processes; return how many.

    Only zombies named like containerd, its shims, runc or docker-proxy, or
    listed in *extra* (pid -> start time), and never a ManagedProcess's pid: a
    blanket waitpid(-1) could steal the exit status a test's own Popen waits for.
    """
    extra = extra or {}
    me = os.getpid()
    managed = {p.pid for p in ManagedProcess.registry}
    reaped = 0
    for proc in _process_table().values():
        if proc.ppid != me or proc.state != "Z" or proc.pid in managed:
            continue
        if proc.comm in _DAEMON_COMMS or extra.get(proc.pid) == proc.starttime:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
                reaped += 1
    return reaped


def _owner_alive(pid: int) -> bool:
    """Whether the test process *pid* still runs (a zombie does not: a SIGKILLed
    pytest lingers as one where pid 1 is slow to reap)."""
    if pid == os.getpid():
        return True
    proc = _read_proc(pid)
    return proc is not None and proc.state != "Z"


def _mkdtemp(kind: str) -> Path:
    """/tmp/sdt-<kind><pid>-XXXXXXXX, the pid marking the owning test process."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{kind}{os.getpid()}-", dir=TMP))


# --------------------------------------------------------------------------
# Network namespaces
# --------------------------------------------------------------------------


def list_netns() -> list[str]:
    """Names from ``ip netns list`` (which prints "name (id: N)")."""
    out = subprocess.run(
        [_which("ip") or "ip", "netns", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _wait_exec(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Wait until nsenter has entered the namespace and exec'd the program.

    Popen returns once nsenter itself runs; a moment later its pid becomes the
    program.  Waiting here means that whatever the caller does with the pid
    (/proc/PID/exe, /proc/PID/net, kill) concerns the program, in the namespace.
    """
    nsenter = os.path.realpath(_which("nsenter") or "/usr/bin/nsenter")
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{proc.pid}/exe") != nsenter:
                return
        except OSError:
            return
        time.sleep(0.001)


class Netns:
    """A named network namespace (``ip netns add``) standing in for a host.

    Programs are started in it with ``nsenter --net=/var/run/netns/NAME ARGV``:
    nsenter without --fork calls setns() and then execs ARGV in place, so the
    Popen's pid is the program's own pid, which is what tests and cleanup need.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._procs: list[ManagedProcess] = []

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    @classmethod
    def create(cls, prefix: str = PREFIX) -> Netns:
        """``ip netns add <prefix>-<pid>-<random>`` and bring ``lo`` up inside.

        ``lo`` starts down in a new namespace; nothing can listen on 127.0.0.1
        until it is up.
        """
        require_root()
        require_tools("ip", "nsenter")
        ns = cls(f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}")
        subprocess.run(
            [_which("ip") or "ip", "netns", "add", ns.name],
            check=True,
            capture_output=True,
            text=True,
        )
        try:
            ns.run(["ip", "link", "set", "lo", "up"], check=True)
        except BaseException:
            ns.delete()
            raise
        return ns

    @property
    def path(self) -> Path:
        return Path("/var/run/netns") / self.name

    def exists(self) -> bool:
        return self.name in list_netns()

    def inode(self) -> int:
        """The nsfs inode that identifies this namespace (as in /proc/PID/ns/net)."""
        return os.stat(self.path).st_ino

    def nsenter_argv(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs *argv* inside this namespace (network only)."""
        return ["nsenter", f"--net={self.path}", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 60.0,
        **kw: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run *argv* in the namespace to completion (text, captured output)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("env", {**os.environ, "PATH": _SEARCH_PATH})
        return subprocess.run(
            self.nsenter_argv(argv), check=check, timeout=timeout, **kw
        )

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> ManagedProcess:
        """Start *argv* in the namespace in the background.

        It gets its own session (a stray ^C to pytest doesn't hit it first) and
        its output goes to *log_path*, or to a fresh temp dir that the process
        owns; never to a pipe that nobody reads and that could fill up.
        """
        owned: list[Path] = []
        if log_path is None:
            scratch = _mkdtemp("p")
            owned.append(scratch)
            log_path = scratch / "output.log"
        env = dict(env) if env is not None else {**os.environ, "PATH": _SEARCH_PATH}
        try:
            with log_path.open("ab") as log:
                proc = ManagedProcess(
                    self.nsenter_argv(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                    cwd=cwd,
                )
        except BaseException:
            for d in owned:
                shutil.rmtree(d, ignore_errors=True)
            raise
        proc.log_path = log_path
        proc.owned_dirs = owned
        self._procs.append(proc)
        _wait_exec(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process currently in this namespace."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                ns = os.stat(f"/proc/{entry}/ns/net")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if (ns.st_ino, ns.st_dev) == (st.st_ino, st.st_dev):
                found.append(int(entry))
        return found

    def delete(self) -> None:
        """Stop the daemons and processes started in it, then delete.  Idempotent.

        Normally the fixtures have stopped everything already; this is the
        safety net that still leaves nothing running when they didn't.
        """
        problems: list[str] = []
        for daemon in list(Dockerd._running.get(self.name, [])):
            try:
                daemon.stop()
            except DockerdError as e:
                problems.append(str(e))
        for proc in self._procs:
            stop_process(proc)
        self._procs.clear()
        if self.exists():
            subprocess.run(
                [_which("ip") or "ip", "netns", "delete", self.name],
                check=True,
                capture_output=True,
                text=True,
            )
        if problems:
            raise DockerdError("; ".join(problems))


# --------------------------------------------------------------------------
# Listening sockets
# --------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ListeningSocket:
    """A TCP socket in state LISTEN, read from /proc/PID/net/tcp{,6}."""

    address: IPAddress
    port: int
    inode: int


def _decode_proc_addr(hexaddr: str) -> IPAddress:
    """Decode /proc/net/tcp's hex address: 32-bit words in host (little) order."""
    words = [int(hexaddr[i : i + 8], 16) for i in range(0, len(hexaddr), 8)]
    raw = b"".join(struct.pack("<I", w) for w in words)
    return ipaddress.ip_address(raw)


def listening_sockets(pid: int) -> list[ListeningSocket]:
    """All listening TCP sockets of the network namespace *pid* is in.

    /proc/PID/net is per namespace, so this works for any namespace from the
    root one, without entering it.
    """
    found: list[ListeningSocket] = []
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            host, port = fields[1].split(":")
            found.append(
                ListeningSocket(_decode_proc_addr(host), int(port, 16), int(fields[9]))
            )
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def wait_listening(
    proc: subprocess.Popen[Any],
    port: int,
    host: str | None = None,
    timeout: float = 15.0,
) -> None:
    """Return once *proc* itself holds a socket listening on (host, port).

    Matching on the socket inode (not just the port) means a port that some
    other process already holds can't be mistaken for ours.  Raises
    RuntimeError with the log tail if the process exits or times out.
    """
    want = ipaddress.ip_address(host) if host is not None else None
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited with {proc.returncode} before listening on "
                f"{host}:{port}:\n{log_tail(getattr(proc, 'log_path', None))}"
            )
        mine = _socket_inodes(proc.pid)
        for sock in listening_sockets(proc.pid):
            if (
                sock.port == port
                and sock.inode in mine
                and (want is None or sock.address == want)
            ):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{proc.args!r} not listening on {host}:{port} after {timeout}s:\n"
                f"{log_tail(getattr(proc, 'log_path', None))}"
            )
        time.sleep(0.02)


_LISTENER_SCRIPT = r"""
import signal, socket, sys
host, port, v6only = sys.argv[1], int(sys.argv[2]), sys.argv[3]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6 and v6only != "default":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
s.bind((host, port))
s.listen(128)
print("listening", host, port, "v6only", v6only, flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
"""


def start_tcp_listener(
    netns: Netns,
    host: str,
    port: int,
    v6only: bool | None = None,
    *,
    timeout: float = 15.0,
) -> ManagedProcess:
    """A real process listening on (host, port) in *netns*; returns once it listens.

    It listens and never accepts, which is all a port-conflict check can see.
    For an IPv6 host, v6only=True sets IPV6_V6ONLY=1 (an IPv6-only "[::]:8000"),
    False sets 0 (dual stack), None leaves the kernel default.
    """
    flag = "default" if v6only is None else str(int(v6only))
    proc = netns.spawn(
        [sys.executable, "-I", "-c", _LISTENER_SCRIPT, host, str(port), flag]
    )
    try:
        wait_listening(proc, port, host, timeout)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def start_redis(
    netns: Netns, port: int = 6379, *, bind: str = "0.0.0.0", timeout: float = 15.0
) -> ManagedProcess:
    """Debian's redis-server in *netns*, in the foreground, with no persistence.

    It runs for real (tests can PING it) from a scratch --dir that is removed
    when the process is stopped.
    """
    tools = require_tools("redis-server")
    workdir = _mkdtemp("p")
    try:
        proc = netns.spawn(
            [
                tools["redis-server"],
                "--port",
                str(port),
                "--bind",
                bind,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(workdir),
                "--logfile",
                "",
            ],
            log_path=workdir / "redis.log",
            cwd=workdir,
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    proc.owned_dirs.append(workdir)
    try:
        wait_listening(proc, port, bind, timeout)
    except BaseException:
        stop_process(proc)
        raise
    return proc


class Listeners:
    """Starts listeners and remembers them, so one call stops them all."""

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []

    def tcp(
        self, netns: Netns, host: str, port: int, v6only: bool | None = None
    ) -> ManagedProcess:
        proc = start_tcp_listener(netns, host, port, v6only)
        self.processes.append(proc)
        return proc

    def redis(self, netns: Netns, port: int = 6379) -> ManagedProcess:
        proc = start_redis(netns, port)
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            stop_process(proc)
        self.processes.clear()


# --------------------------------------------------------------------------
# A socket that never answers
# --------------------------------------------------------------------------


class HangingUnixServer:
    """A unix socket that listens but never accepts or answers.

    The kernel completes connect() from the backlog, so a client connects fine
    and then waits forever for a reply: a wedged dockerd, as the client sees it.
    The socket is world-writable so an unprivileged CLI can hang on it too.
    """

    def __init__(self, backlog: int = 64) -> None:
        self.dir = _mkdtemp("s")
        self.dir.chmod(0o755)
        self.path = self.dir / "hang.sock"
        self._sock: socket.socket | None = socket.socket(
            socket.AF_UNIX, socket.SOCK_STREAM
        )
        try:
            self._sock.bind(str(self.path))
            self.path.chmod(0o777)
            self._sock.listen(backlog)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def close(self) -> None:
        """Close the socket (pending clients see EOF/reset) and remove the dir."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> HangingUnixServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------
# dockerd
# --------------------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, for /_ping without the SDK's machinery."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _dockerd_major_version(dockerd: str) -> int:
    out = subprocess.run([dockerd, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+)\.", out)
    return int(m.group(1)) if m else 0


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below *root*, from /proc/self/mountinfo."""
    prefix = str(root)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4]
        # mountinfo escapes space, tab, newline and backslash as \ooo
        mountpoint = re.sub(
            r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mountpoint
        )
        if mountpoint == prefix or mountpoint.startswith(prefix + "/"):
            found.append(mountpoint)
    return found


def _unmount_all_under(root: Path) -> None:
    """Lazily unmount everything below *root*, deepest first, until nothing is left.

    Left behind by a dockerd that was killed: the data-root bind mount it makes
    private, overlay "merged" dirs, container shm and nsfs netns mounts.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(20):
        mounts = _mounts_under(root)
        if not mounts:
            return
        for mp in sorted(mounts, key=lambda p: p.count("/"), reverse=True):
            if libc.umount2(mp.encode(), _MNT_DETACH) != 0:
                err = ctypes.get_errno()
                if err not in (errno.EINVAL, errno.ENOENT):
                    raise OSError(err, f"umount2({mp}): {os.strerror(err)}")
    raise OSError(
        errno.EBUSY, f"mounts under {root} keep coming back: {_mounts_under(root)}"
    )


def remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup directory and everything below it, leaves first."""
    if not top.is_dir():
        return
    for dirpath, _dirs, _files in sorted(
        os.walk(top), key=lambda t: t[0].count("/"), reverse=True
    ):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


def _remove_cgroups(name: str) -> None:
    """rmdir the per-daemon cgroup parent /<name> in every hierarchy, leaves first."""
    base = Path("/sys/fs/cgroup")
    for top in [base / name] + [d / name for d in base.iterdir() if d.is_dir()]:
        remove_cgroup_tree(top)


def _shim_sockets(root: Path) -> list[Path]:
    """The /run/containerd/s sockets of the containerd shims of the daemon at *root*.

    containerd 1.6 names a shim's socket sha256(<containerd address>/<ns>/<id>)
    under /run/containerd/s, whatever its state dir is.  A shim removes it when
    it exits cleanly; after a SIGKILL it would be left over.
    """
    address = root / "x" / "containerd" / "containerd.sock"
    tasks = root / "x" / "containerd" / "daemon" / "io.containerd.runtime.v2.task"
    found = []
    if tasks.is_dir():
        for ns in tasks.iterdir():
            for task in ns.iterdir() if ns.is_dir() else ():
                digest = hashlib.sha256(f"{address}/{ns.name}/{task.name}".encode())
                found.append(Path("/run/containerd/s") / digest.hexdigest())
    return found


def _processes_of_root(root: Path, table: Mapping[int, _Proc]) -> dict[int, int]:
    """pid -> starttime of every process attributable to the daemon at *root*.

    Its containerd and shims carry *root* in their command lines; container
    processes live in the per-daemon cgroup parent /<root.name>; anything
    descended from those is included.
    """
    marker = str(root) + "/"
    cgroup_marker = f":/{root.name}/"
    direct = {
        p.pid
        for p in table.values()
        if p.pid != os.getpid() and (marker in p.cmdline or cgroup_marker in p.cgroup)
    }
    pids = direct | _descendants(direct, table)
    return {pid: table[pid].starttime for pid in pids if pid in table}


def _teardown_root(root: Path, known: Mapping[int, int] | None = None) -> list[str]:
    """Kill what belongs to the daemon at *root*, unmount, remove.  Returns problems.

    Used by Dockerd.stop after dockerd itself has exited, and by reap_stale for
    a daemon whose test run was SIGKILLed.
    """
    problems: list[str] = []
    victims = dict(known or {})
    victims.update(_processes_of_root(root, _process_table()))
    sockets = _shim_sockets(root)
    survivors = _kill_and_wait(victims)
    if survivors:
        problems.append(f"processes of {root} survived SIGKILL: {survivors}")
    for sock in sockets:
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    try:
        _unmount_all_under(root)
    except OSError as e:
        problems.append(str(e))
    _remove_cgroups(root.name)
    reap_daemon_zombies(victims)
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        problems.append(f"could not remove {root}")
    return problems


class Dockerd:
    """A private dockerd inside a :class:`Netns`, with everything under one temp dir.

    Its daemon.json (passed with --config-file, so /etc/docker/daemon.json is
    never read) sets its own API socket, data-root, exec-root (and so its own
    managed containerd, whose socket and state live there), pidfile, trust key
    (dockerd 20.10 otherwise writes /etc/docker/key.json) and a cgroup parent
    named after the temp dir, so every process and mount it creates can be
    attributed to it and cleaned up, and several can run at once.

    Only one daemon per namespace can own the default bridge docker0 and the
    DOCKER iptables chains: a second one would flush the first one's chains at
    start-up, and with ``"bridge": "none"`` it even deletes docker0.  So a second
    daemon started in a namespace that already has one gets a bridge of its own
    (``sdtbrXXXXXX``, 172.30.N.1/24, made here and deleted by :meth:`stop`) and
    ``"iptables": false`` (published ports then go through docker-proxy alone),
    unless extra_config sets "bridge" itself.
    """

    #: Running daemons per namespace name, for the docker0 rule above.
    _running: ClassVar[dict[str, list[Dockerd]]] = {}

    def __init__(
        self,
        netns: Netns,
        root: Path,
        config: dict[str, Any],
        process: ManagedProcess,
        bridge: tuple[str, int] | None = None,
    ) -> None:
        self.netns = netns
        #: (name, N) of the bridge made for a second daemon in one namespace.
        self.bridge = bridge
        self.root = root
        self.config = config
        self.process = process
        self.pid = process.pid
        self.socket_path = root / "d.sock"
        self.url = f"unix://{self.socket_path}"
        self.log_path = root / "dockerd.log"
        self.startup_seconds: float | None = None
        self._clients: list[docker.DockerClient] = []
        self._stopped = False

    def __repr__(self) -> str:
        return f"Dockerd(pid={self.pid}, netns={self.netns.name!r}, url={self.url!r})"

    @property
    def tcp_hosts(self) -> list[str]:
        """The tcp:// hosts it listens on (reachable only inside its namespace)."""
        return [h for h in self.config["hosts"] if h.startswith("tcp://")]

    @classmethod
    def start(
        cls,
        netns: Netns,
        *,
        extra_hosts: Sequence[str] = (),
        extra_config: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> Dockerd:
        """Start a dockerd in *netns* and return once /_ping answers.

        *extra_hosts* are added to daemon.json "hosts" (e.g.
        "tcp://127.0.0.1:4243"); *extra_config* keys are merged into daemon.json
        last, so they win.  On any failure everything is cleaned up before the
        exception propagates.
        """
        require_root()
        become_subreaper()
        tools = require_tools(
            "dockerd",
            "containerd",
            "containerd-shim-runc-v2",
            "runc",
            "iptables",
            "docker-proxy",
            "nsenter",
        )
        root = _mkdtemp("d")
        # Searchable by all, like /run holding docker.sock on a real host: other
        # users can stat the socket and are refused by its own 0660 root:docker
        # mode, not by a 0700 directory no real host has.
        root.chmod(0o711)
        socket_path = root / "d.sock"
        config: dict[str, Any] = {
            "hosts": [f"unix://{socket_path}", *extra_hosts],
            "data-root": str(root / "data"),
            "exec-root": str(root / "x"),
            "pidfile": str(root / "dockerd.pid"),
            "storage-driver": "overlay2",
            "cgroup-parent": f"/{root.name}",
            "iptables": True,
            # Containers are killed through the API before SIGTERM; this only
            # bounds the wait if that failed.
            "shutdown-timeout": 3,
        }
        if _dockerd_major_version(tools["dockerd"]) < 23:
            config["deprecated-key-path"] = str(root / "key.json")
        bridge: tuple[str, int] | None = None
        neighbours = cls._running.get(netns.name, [])
        if neighbours and "bridge" not in (extra_config or {}):
            used = {d.bridge[1] for d in neighbours if d.bridge is not None}
            bridge = (f"sdtbr{secrets.token_hex(3)}", min(set(range(1, 255)) - used))
        config.update(extra_config or {})
        (root / "daemon.json").write_text(json.dumps(config, indent=2))
        env = {"PATH": _SEARCH_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        started = time.monotonic()
        try:
            if bridge is not None:
                config.update({"bridge": bridge[0], "iptables": False})
                (root / "daemon.json").write_text(json.dumps(config, indent=2))
                for argv in (
                    ["ip", "link", "add", "name", bridge[0], "type", "bridge"],
                    ["ip", "addr", "add", f"172.30.{bridge[1]}.1/24", "dev", bridge[0]],
                    ["ip", "link", "set", bridge[0], "up"],
                ):
                    netns.run(argv, check=True)
            process = netns.spawn(
                [tools["dockerd"], "--config-file", str(root / "daemon.json")],
                log_path=root / "dockerd.log",
                env=env,
                cwd=root,
            )
        except BaseException:
            if bridge is not None:
                netns.run(["ip", "link", "del", bridge[0]])
            _teardown_root(root)
            raise
        daemon = cls(netns, root, config, process, bridge)
        cls._running.setdefault(netns.name, []).append(daemon)
        try:
            daemon.wait_ready(timeout)
        except BaseException:
            daemon.stop()
            raise
        daemon.startup_seconds = time.monotonic() - started
        return daemon

    def ping(self, timeout: float = 2.0) -> bool:
        """True if GET /_ping on the unix socket answers 200 OK."""
        conn = _UnixHTTPConnection(str(self.socket_path), timeout)
        try:
            conn.request("GET", "/_ping")
            resp = conn.getresponse()
            return resp.status == 200 and resp.read() == b"OK"
        except OSError:
            return False
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll /_ping until it answers; raise DockerdError with the log if not."""
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None:
                raise DockerdError(
                    f"dockerd exited with {self.process.returncode}:\n"
                    f"{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise DockerdError(
                    f"dockerd not ready after {timeout}s:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def client(self, timeout: int = 30) -> docker.DockerClient:
        """A docker SDK client on the unix socket; closed by :meth:`stop`."""
        import docker

        cli = docker.DockerClient(base_url=self.url, timeout=timeout)
        self._clients.append(cli)
        return cli

    def _remove_all_containers(self) -> None:
        """Force-remove every container via the API: SIGKILL instead of dockerd's
        10 s SIGTERM grace per container at shutdown (busybox sleep as pid 1
        ignores SIGTERM)."""
        import docker

        api = docker.APIClient(base_url=self.url, timeout=10)
        try:
            for c in api.containers(all=True, quiet=True):
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_container(c["Id"], force=True, v=True)
        finally:
            api.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dockerd and everything it started, unmount, remove its root.

        SIGTERM first (clean shutdown unmounts and removes shim sockets), SIGKILL
        after *timeout*; then any leftover containerd, shim or container
        process attributable to this daemon is killed, leftover mounts under
        its root are lazily unmounted and the root is removed.  Idempotent.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None and self.ping():
                with contextlib.suppress(Exception):
                    self._remove_all_containers()
            for cli in self._clients:
                with contextlib.suppress(Exception):
                    cli.close()
            self._clients.clear()
            known = _processes_of_root(self.root, _process_table())
            if self.process.poll() is None:
                table = _process_table()
                for pid in _descendants([self.pid], table):
                    known[pid] = table[pid].starttime
            stop_process(self.process, timeout)
            problems = _teardown_root(self.root, known)
            if self.bridge is not None and self.netns.exists():
                self.netns.run(["ip", "link", "del", self.bridge[0]])
        finally:
            running = self._running.get(self.netns.name, [])
            if self in running:
                running.remove(self)
            if not running:
                self._running.pop(self.netns.name, None)
        if problems:
            raise DockerdError("; ".join(problems))

    def __enter__(self) -> Dockerd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------
# The busybox stand-in image
# --------------------------------------------------------------------------


def _busybox_rootfs(busybox: Path) -> bytes:
    """A tar of a minimal rootfs: static busybox plus a symlink per applet."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        def add_link(name: str, target: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)

        for d in (
            "bin",
            "dev",
            "etc",
            "proc",
            "sys",
            "usr",
            "usr/bin",
            "var",
            "var/www",
            "var/run",
        ):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_dir("root", 0o700)
        add_file("bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet != "busybox":
                add_link(f"bin/{applet}", "busybox")
        add_link("usr/bin/env", "../../bin/busybox")
        add_file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for name in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
            add_file(name, b"")
    return buf.getvalue()


def build_busybox_image(
    client: docker.DockerClient,
    tag: str = STANDIN_IMAGE,
    busybox: Path = Path("/usr/bin/busybox"),
) -> str:
    """Import a busybox-only image as *tag* and return its image id.

    Nothing can be pulled here, so the stand-in for every image the tests need
    is made from Debian's static busybox with `docker import`: sh, sleep, nc,
    httpd, cat, ls... are all there, PATH is /bin.  Tag it under more names with
    :func:`tag_image` to imitate a stack (shipyard/shipyard, shipyard/redis...).
    """
    from docker.utils import parse_repository_tag

    if not busybox.exists() or not _is_static_elf(busybox):
        raise InfraMissing(
            f"a static busybox is needed at {busybox}: apt-get install busybox-static"
        )
    repository, image_tag = parse_repository_tag(tag)
    client.api.import_image_from_data(
        _busybox_rootfs(busybox),
        repository=repository,
        tag=image_tag or "latest",
        changes=["ENV PATH=/bin:/usr/bin", 'CMD ["sh"]', "WORKDIR /"],
    )
    image_id: str = client.images.get(tag).id
    return image_id


def tag_image(client: docker.DockerClient, image: str, *refs: str) -> None:
    """Tag the image *image* (id or reference) as each of *refs* ("repo:tag")."""
    from docker.utils import parse_repository_tag

    img = client.images.get(image)
    for ref in refs:
        repository, image_tag = parse_repository_tag(ref)
        img.tag(repository, image_tag or "latest")


# --------------------------------------------------------------------------
# A Docker "host": namespace + daemon + image
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerHostSnapshot:
    """What a docker host held at one moment, to undo a test's changes."""

    containers: frozenset[str]
    images: frozenset[str]
    tags: Mapping[str, str]  # "repo:tag" -> image id
    networks: frozenset[str]
    volumes: frozenset[str]


@dataclass
class DockerHost:
    """A namespace with a dockerd and the stand-in image: one fake Docker host."""

    netns: Netns
    dockerd: Dockerd
    client: docker.DockerClient
    image: str
    image_tag: str = STANDIN_IMAGE
    image_seconds: float = 0.0
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, **dockerd_kw: Any) -> DockerHost:
        """Create a namespace, start dockerd in it, import the stand-in image."""
        netns = Netns.create()
        dockerd: Dockerd | None = None
        try:
            dockerd = Dockerd.start(netns, **dockerd_kw)
            client = dockerd.client()
            started = time.monotonic()
            image = build_busybox_image(client)
            return cls(
                netns, dockerd, client, image, image_seconds=time.monotonic() - started
            )
        except BaseException:
            if dockerd is not None:
                dockerd.stop()
            netns.delete()
            raise

    def close(self) -> None:
        """Stop the daemon and delete the namespace (even if stopping failed)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.dockerd.stop()
        finally:
            self.netns.delete()

    def ensure_alive(self) -> None:
        """Raise DockerdError (with the log) if a test killed or wedged the daemon."""
        if not self.dockerd.ping():
            raise DockerdError(
                f"session dockerd is not answering:\n{log_tail(self.dockerd.log_path)}"
            )

    def snapshot(self) -> DockerHostSnapshot:
        c = self.client
        tags = {t: img.id for img in c.images.list(all=True) for t in img.tags}
        return DockerHostSnapshot(
            containers=frozenset(x.id for x in c.containers.list(all=True)),
            images=frozenset(img.id for img in c.images.list(all=True)),
            tags=tags,
            networks=frozenset(n.id for n in c.networks.list()),
            volumes=frozenset(v.name for v in c.volumes.list()),
        )

    def restore(self, before: DockerHostSnapshot) -> None:
        """Remove what was added since *before*; put back removed tags/the image.

        Containers go first (they pin images, networks and volumes).
        """
        import docker

        c = self.client
        for ctr in c.containers.list(all=True):
            if ctr.id not in before.containers:
                with contextlib.suppress(docker.errors.NotFound):
                    ctr.remove(force=True, v=True)
        for net in c.networks.list():
            if net.id not in before.networks:
                with contextlib.suppress(docker.errors.NotFound):
                    net.remove()
        for vol in c.volumes.list():
            if vol.name not in before.volumes:
                with contextlib.suppress(docker.errors.NotFound):
                    vol.remove(force=True)
        for img in c.images.list(all=True):
            for t in img.tags:
                if before.tags.get(t) != img.id:
                    with contextlib.suppress(docker.errors.NotFound):
                        c.images.remove(t, noprune=True)
        for img in c.images.list(all=True):
            if img.id not in before.images:
                with contextlib.suppress(docker.errors.NotFound):
                    c.images.remove(img.id, force=True)
        present = {img.id for img in c.images.list(all=True)}
        if self.image not in present:
            self.image = build_busybox_image(c, self.image_tag)
            present.add(self.image)
        current = {t for img in c.images.list(all=True) for t in img.tags}
        for t, image_id in before.tags.items():
            if t not in current:
                tag_image(c, image_id if image_id in present else self.image, t)
        reap_daemon_zombies()


# --------------------------------------------------------------------------
# An unprivileged user's virtualenv
# --------------------------------------------------------------------------

_NOBODY_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
    "USER": "nobody",
    "LOGNAME": "nobody",
    "LANG": "C.UTF-8",
}


def as_nobody_argv(argv: Sequence[str]) -> list[str]:
    """*argv* prefixed to run as nobody:nogroup with no supplementary groups."""
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]


def run_as_nobody(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str = "/",
    timeout: float = 120.0,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* as user nobody (text, captured output).

    The environment is a clean one for nobody (HOME=/nonexistent...) plus
    *env*: root's HOME and PATH would point it at /root, which it can't read.
    cwd defaults to / for the same reason.
    """
    require_tools("setpriv")
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(
        as_nobody_argv(argv),
        env={**_NOBODY_ENV, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        **kw,
    )


_PY_PROBE = "import ensurepip, venv; print(True)"
_COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".venv",
    "venv",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
)


def _make_world_readable(top: Path) -> None:
    """o+r on everything, o+x on dirs and executables (root's umask may be 077)."""
    for dirpath, dirnames, filenames in os.walk(top):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            mode = os.stat(p).st_mode
            os.chmod(p, mode | 0o044 | (0o011 if mode & 0o100 else 0))
        del dirnames  # walked by os.walk itself


def make_unprivileged_venv(
    project_root: Path, *, python: str = "/usr/bin/python3", timeout: float = 900.0
) -> Path:
    """A venv that user nobody can run, with *project_root* pip-installed.

    The default python3 lives under /root (mode 0700), so a venv made from it
    can't run as another user: Debian's /usr/bin/python3 is used instead, in a
    world-readable dir under /tmp.  The project is copied first so pip's in-tree
    build doesn't leave build/ and *.egg-info in the work tree.  Every dependency
    comes as a wheel (netifaces-plus): no compiler.  The caller removes the
    returned directory.
    """
    require_tools("setpriv")
    if not Path(python).exists():
        raise InfraMissing(f"{python} not found: apt-get install python3 python3-venv")
    probe = subprocess.run([python, "-c", _PY_PROBE], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "True":
        raise InfraMissing(
            f"{python} lacks venv/ensurepip "
            f"({(probe.stderr or probe.stdout).strip()[-200:]}): "
            "apt-get install python3-venv"
        )
    for parent in TMP.resolve().parents:
        if not os.stat(parent).st_mode & 0o001:
            raise InfraMissing(f"{parent} is not world-searchable: chmod o+x {parent}")
    venv = _mkdtemp("v")
    try:
        venv.chmod(0o755)
        subprocess.run(
            [python, "-m", "venv", str(venv)],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with tempfile.TemporaryDirectory(
            prefix=f"{PREFIX}-b{os.getpid()}-", dir=TMP
        ) as b:
            src = Path(b) / "src"
            shutil.copytree(project_root, src, ignore=_COPY_IGNORE, symlinks=True)
            pip = subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--no-input",
                    "--disable-pip-version-check",
                    str(src),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "PIP_NO_INPUT": "1"},
            )
        if pip.returncode != 0:
            raise RuntimeError(
                f"pip install {project_root} into {venv} failed "
                f"(exit {pip.returncode}):\n{pip.stdout[-3000:]}\n{pip.stderr[-3000:]}"
            )
        _make_world_readable(venv)
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    return venv


# --------------------------------------------------------------------------
# After a SIGKILLed run
# --------------------------------------------------------------------------

_NETNS_RE = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]{{8}}$")
_TMPDIR_RE = re.compile(rf"^{PREFIX}-([a-z])(\d+)-")


def reap_stale() -> list[str]:
    """Clean up what a test run that died without teardown (SIGKILL) left behind.

    Only namespaces and /tmp dirs whose names carry this module's prefix and
    whose owner pid is no longer alive are touched: daemons (with their
    containerd, shims, containers and mounts), processes still inside the
    namespaces, the namespaces and the dirs.  Returns what was cleaned.
    """
    cleaned: list[str] = []
    for entry in sorted(TMP.iterdir()):
        m = _TMPDIR_RE.match(entry.name)
        if not m or not entry.is_dir() or _owner_alive(int(m.group(2))):
            continue
        if m.group(1) == "m":
            continue  # a systemd machine's root: machine.reap_stale_machines
        if m.group(1) == "d":
            _teardown_root(entry)
        else:
            with contextlib.suppress(OSError):
                _unmount_all_under(entry)
            shutil.rmtree(entry, ignore_errors=True)
        cleaned.append(str(entry))
    if _which("ip") is None:
        return cleaned
    for name in list_netns():
        m = _NETNS_RE.match(name)
        if not m or _owner_alive(int(m.group(1))):
            continue
        ns = Netns(name)
        table = _process_table()
        _kill_and_wait({pid: table[pid].starttime for pid in ns.pids() if pid in table})
        ns.delete()
        cleaned.append(f"netns {name}")
    return cleaned


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` leaves the elapsed seconds in ``t[0]``."""
    result: list[float] = []
    start = time.monotonic()
    try:
        yield result
    finally:
        result.append(time.monotonic() - start)
