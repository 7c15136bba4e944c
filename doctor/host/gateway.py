"""Host facts: the one gateway from checks to the machine.

Every fact is gathered lazily, once per run, and shared by the checks that ask for it
(checks run concurrently, so each fact has its own lock). Every call that can block is
bounded by a timeout taken from the configuration. Checks get a :class:`Host` and
never import docker, psutil or netifaces themselves.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from shipyard_doctor.config import Config
from shipyard_doctor.host import commands, processes, sockets
from shipyard_doctor.host.dockerapi import (
    DockerProbe,
    describe_error,
    make_client,
    parse_endpoint,
    probe,
)
from shipyard_doctor.host.dockerhttp import DockerHttp
from shipyard_doctor.host.facts import Unavailable
from shipyard_doctor.records import record
from shipyard_doctor.stacks import Stack, load_stack

if TYPE_CHECKING:
    from shipyard_doctor.host.manager import DockerManager

T = TypeVar("T")


def fact(method: Callable[[Host], T]) -> Callable[[Host], T]:
    """Compute a host fact on first use, once, even when checks ask concurrently."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Host) -> T:
        with self._locks[name]:
            if name not in self._facts:
                self._facts[name] = method(self)
            return cast(T, self._facts[name])  # one table holds every fact

    return wrapper


@record
class ProcessInfo:
    """A process on this host: its pid, name, command line and user."""

    pid: int
    name: str
    cmdline: tuple[str, ...]
    user: str | None

    def describe(self) -> str:
        # Collapse whitespace: redis pads its rewritten title with spaces, and a
        # `python -c` script would otherwise spill over several lines.
        command = " ".join(" ".join(self.cmdline).split()) or self.name
        if len(command) > 120:
            command = command[:117] + "..."
        user = f", user {self.user}" if self.user else ""
        return f"{self.name} (pid {self.pid}{user}): {command}"


@record
class PublishedPort:
    """A published container port: host address and port, container port, protocol."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str


@record
class Container:
    """A container as the daemon lists it: id, name, image, state, ports and labels."""

    id: str
    name: str
    image: str
    state: str
    ports: tuple[PublishedPort, ...]
    labels: Mapping[str, str]


class Host:
    """The facts of one run. Close it (or use it as a context manager) when done:
    that closes the one Docker client the run opened, if it opened one."""

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str] | None = None,
        probe_dhcp: tuple[str, ...] = (),
    ):
        self.config = config
        self.environ = dict(os.environ if environ is None else environ)
        # Interfaces the user named with --probe-dhcp: the only ones on which the
        # doctor may send anything (a DHCPDISCOVER).
        self.probe_dhcp = probe_dhcp
        self._facts: dict[Hashable, Any] = {}
        self._locks = _LockTable()
        self._client: Any = None
        self._api: DockerHttp | None = None
        self._client_lock = threading.Lock()

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Compute a fact once per run. Fact modules use it through
        :func:`~shipyard_doctor.host.facts.host_fact`, which keys it by the function
        and its arguments. Thread-safe like ``@fact``."""
        with self._locks[key]:
            if key not in self._facts:
                self._facts[key] = compute()
            return cast(T, self._facts[key])

    def close(self) -> None:
        """Close the Docker client, if one was opened; the host stays usable (a
        later call opens a new one). A check thread still opening one is waited for
        a second at most: close also runs while Ctrl-C ends the program, and that
        thread may be stuck (on the import lock an interrupted import left taken)."""
        if not self._client_lock.acquire(timeout=1.0):
            return
        try:
            client, self._client = self._client, None
        finally:
            self._client_lock.release()
        if client is not None:
            client.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def proc(self) -> Path:
        """Where /proc is read from: [host] proc_dir."""
        return Path(self.config.host.proc_dir)

    def run_command(
        self, argv: Sequence[str], timeout: float | None = None
    ) -> commands.CommandResult:
        """Run a read-only command (iptables-save, journalctl, ...), time-bounded."""
        budget = self.config.checks.timeout * 0.75 if timeout is None else timeout
        return commands.run(argv, budget, self.environ)

    # --- identity ----------------------------------------------------------------

    @property
    def euid(self) -> int:
        return os.geteuid()

    @property
    def is_root(self) -> bool:
        return self.euid == 0

    @fact
    def stack(self) -> Stack:
        return load_stack(self.config.stack.name)

    @fact
    def summary(self) -> dict[str, Any]:
        uname = os.uname()
        return {
            "hostname": socket.gethostname(),
            "os": os_release(Path(self.config.host.os_release)).get(
                "PRETTY_NAME", uname.sysname
            ),
            "kernel": uname.release,
            "arch": uname.machine,
            "user": _username(self.euid),
            "uid": self.euid,
            "docker_host": self.config.docker.host,
            "stack": self.config.stack.name,
        }

    # --- Docker ------------------------------------------------------------------

    @property
    def docker_timeout(self) -> float:
        """Seconds for one Docker API call: [docker] timeout, but short enough that a
        check waiting on it can still explain a hung daemon within its own timeout."""
        check_budget = max(0.5, self.config.checks.timeout * 0.75)
        return min(self.config.docker.timeout, check_budget)

    @fact
    def docker(self) -> DockerProbe:
        cfg = self.config.docker
        return probe(
            parse_endpoint(cfg.host),
            self.docker_timeout,
            cfg.min_api_version,
            self.docker_api(),
        )

    def docker_api(self) -> DockerHttp:
        """The run's read-only Docker API client (standard library, no docker SDK):
        /info, /containers/json, ... each within :attr:`docker_timeout` in total."""
        with self._client_lock:
            if self._api is None:
                endpoint = parse_endpoint(self.config.docker.host)
                self._api = DockerHttp(endpoint, self.docker_timeout)
            return self._api

    def docker_client(self) -> Any:
        """The run's docker SDK client for the configured endpoint, for the fix
        engine (which writes); opened on first use, each read bounded by
        :attr:`docker_timeout`; :meth:`close` closes it. Checks read through
        :meth:`docker_api` instead."""
        with self._client_lock:
            if self._client is None:
                endpoint = parse_endpoint(self.config.docker.host)
                self._client = make_client(endpoint, self.docker_timeout)
            return self._client

    @fact
    def containers(self) -> tuple[Container, ...] | Unavailable:
        """All containers of the configured daemon, or why they cannot be listed."""
        if not self.docker().ok:
            return Unavailable(self.docker().reason or "the Docker API does not answer")
        try:
            raw = self.docker_api().containers(all=True)
        except Exception as exc:  # OSError, a timeout, an HTTP error
            return Unavailable(describe_error(exc))
        return tuple(_container(c) for c in raw)

    @fact
    def process_names(self) -> tuple[tuple[int, str], ...]:
        """(pid, name) of every process, read once per run: docker-state's daemons
        and dhcp's clients are picked from the same scan. One read of
        /proc/PID/comm each (psutil's process_iter read and parsed /proc/PID/stat:
        60 ms for the ~500 processes of 200 containers, now ~8 ms)."""
        return tuple(processes.names(str(self.proc)))

    def processes_named(self, names: Iterable[str]) -> tuple[ProcessInfo, ...]:
        """The processes running one of ``names``, with their command lines."""
        wanted = frozenset(names)
        found = (
            self.process(pid) for pid, name in self.process_names() if name in wanted
        )
        return tuple(info for info in found if info is not None)

    @fact
    def dockerd_processes(self) -> tuple[ProcessInfo, ...]:
        return tuple(
            info
            for info in self.processes_named(("dockerd", "docker"))
            if _is_docker_daemon(info)
        )

    def docker_manager(self) -> DockerManager:
        """Who manages the running dockerd (or would start one): systemd, a snap,
        rootless systemd, an init script, a hand; see doctor/host/manager.py."""
        from shipyard_doctor.host.manager import docker_manager

        return docker_manager(self)

    def find_binary(self, name: str) -> str | None:
        """A binary on the caller's PATH or in the usual system directories."""
        path = os.pathsep.join(
            [self.environ.get("PATH", ""), *self.config.host.bin_dirs]
        )
        return commands.which(name, path)

    # --- sockets and processes ---------------------------------------------------

    @fact
    def tcp_listeners(self) -> tuple[sockets.Listener, ...]:
        return tuple(sockets.listening_tcp(self.proc))

    def socket_owners(self, inodes: Iterable[int]) -> dict[int, ProcessInfo | None]:
        pids = sockets.socket_owners(inodes, self.proc)
        return {inode: self.process(pid) for inode, pid in pids.items()}

    def process(self, pid: int) -> ProcessInfo | None:
        """A process's name, command line and user, from /proc as psutil reads
        them (without importing psutil: ~8 ms of every check)."""
        found = processes.details(pid, str(self.proc))
        if found is None:
            return None
        name, cmdline, uid = found
        return ProcessInfo(pid, name, cmdline, _username(uid))

    def username(self, uid: int) -> str:
        return _username(uid)

    def in_own_netns(self, pid: int) -> bool | None:
        """Whether process ``pid`` shares the doctor's network namespace."""
        return in_own_netns(pid, self.proc)


def in_own_netns(pid: int, proc: Path = Path("/proc")) -> bool | None:
    """Whether a process shares the doctor's network namespace; None if not allowed
    to look. A dockerd in another namespace (docker-in-docker, rootless Docker, a test
    host) is another "host": its own docker0, iptables rules and ports."""
    try:
        theirs = os.stat(proc / str(pid) / "ns" / "net")
        mine = os.stat(proc / "self" / "ns" / "net")
    except OSError:
        return None
    return (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino)


# Flags of the old all-in-one docker binary that take the next word as their value
# (`docker -H fd:// -d`), so that value is not taken for a subcommand.
_DOCKER_VALUE_FLAGS = frozenset(
    {
        *("-H", "--host", "-g", "--graph", "-s", "--storage-driver", "-p"),
        *("--pidfile", "-b", "--bridge", "-e", "--exec-driver", "-G", "--group"),
        *("-l", "--log-level", "--config", "-c", "--context", "--tlscacert"),
        *("--tlscert", "--tlskey", "--dns", "--dns-search", "--bip", "--mtu", "--ip"),
    }
)


def _is_docker_daemon(info: ProcessInfo) -> bool:
    # Before Docker 1.8 the daemon was the client binary run as `docker -d` (the
    # story's CoreOS unit), then `docker daemon` until dockerd split out in 1.12.
    # A client's `docker run -d IMAGE` is not one: -d after a subcommand is that
    # subcommand's own flag (detach).
    if info.name == "dockerd":
        return True
    return is_daemon_command(info.cmdline[1:])


def is_daemon_command(args: Sequence[str]) -> bool:
    """Whether the arguments of the ``docker`` binary make it the daemon: ``-d`` or
    ``--daemon`` before any subcommand, or ``daemon`` as the subcommand."""
    takes_value = False
    for word in args:
        if takes_value:
            takes_value = False
            continue
        if word in ("-d", "--daemon", "--daemon=true"):
            return True
        if word.startswith("-"):
            takes_value = word in _DOCKER_VALUE_FLAGS
            continue
        return word == "daemon"  # the first positional word is the subcommand
    return False


class _LockTable(dict[Hashable, threading.Lock]):
    """A lock per fact key, created on first use under one guard lock."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()

    def __missing__(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self.setdefault(key, threading.Lock())


def _container(raw: Mapping[str, Any]) -> Container:
    names = raw.get("Names") or [raw.get("Id", "")[:12]]
    ports = tuple(
        PublishedPort(
            p.get("IP", ""),
            int(p["PublicPort"]),
            int(p["PrivatePort"]),
            p.get("Type", "tcp"),
        )
        for p in raw.get("Ports") or ()
        if p.get("PublicPort")
    )
    return Container(
        id=raw.get("Id", ""),
        # The first name is the container's own; others are legacy link aliases.
        name=min(names, key=lambda n: n.count("/")).lstrip("/"),
        image=_short_image(raw.get("Image", "")),
        state=raw.get("State", ""),
        ports=ports,
        labels=raw.get("Labels") or {},
    )


def _short_image(image: str) -> str:
    # A container created from an image id lists that id as its image.
    return image[len("sha256:") :][:12] if image.startswith("sha256:") else image


def _username(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    """/etc/os-release as a dict (ID, VERSION_ID, PRETTY_NAME, ...); {} if absent."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values
