"""A real systemd machine for the tests: Debian bookworm booted with systemd-nspawn.

The test bed's network namespaces share this machine's /run and have no systemd
of their own, so everything that goes through systemd (drop-ins, socket units,
``systemctl restart``, ``journalctl -u docker``, start limits) is proven here, in
a machine whose PID 1 is systemd and whose Docker is Debian's docker.service.
The recipe is /work/shared/testbed/systemd-machine.md; in short:

* :func:`base_root` debootstraps a root file system once per machine and caches
  it under :data:`CACHE`, keyed by a hash of what goes into it (packages, the
  project's dependencies, this recipe's version).  The project's dependencies are
  built into wheels here and installed in a venv at /opt/sd of the base, so a
  machine only needs ``pip install --no-deps`` of the checkout.
* :meth:`Machine.boot` copies the base, installs the checkout's wheel, and boots
  the copy with systemd-nspawn in cgroups of its own (this kernel runs cgroup v1),
  with keyctl allowed (containers need it) and a private network.  It returns once
  docker.service is active.
* :meth:`Machine.run` runs a command inside with ``nsenter -t INIT -a``;
  :meth:`Machine.stop` sends one SIGTERM to systemd-nspawn, unmounts, removes
  the copy and the cgroups, and is safe to call twice.

Nothing here reaches this machine's own systemd or Docker: the machine has its
own PID 1, mount namespace and network namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import infra
from infra import InfraMissing

#: Where the base root file systems are kept between runs.
CACHE = Path(os.environ.get("SD_MACHINE_CACHE", "/var/cache/shipyard-doctor-tests"))

#: Bump when the way the base is built changes, so old caches are not reused.
RECIPE_VERSION = "1"

#: Debian packages in the machine (debootstrap --include).
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "docker.io",
    "iproute2",
    "iptables",
    "procps",
    "curl",
    "python3",
    "python3-venv",
    "busybox-static",
)

#: The v1 cgroup controllers the machine gets a cgroup of its own in (memory is
#: handled apart: it goes under this process's own memory cgroup).
_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids")

#: Environment of every command run inside the machine.
_MACHINE_PATH = (
    "/opt/sd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _project_dependencies() -> list[str]:
    """The ``[project] dependencies`` of pyproject.toml."""
    import tomllib

    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return deps


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (the only one reachable)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        m = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        m = re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm", legacy.read_text(), re.M
        )
        if m:
            return m.group(1)
    raise InfraMissing(
        "no Debian mirror in /etc/apt/sources.list.d/debian.sources: "
        "the systemd test machine is debootstrapped from it"
    )


def cache_key() -> str:
    """What the base is made of, hashed: packages, dependencies, recipe, Python."""
    text = "\n".join(
        [RECIPE_VERSION, *PACKAGES, *_project_dependencies(), sys.version.split()[0]]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def require_machine_tools() -> dict[str, str]:
    """Root, debootstrap, systemd-nspawn and nsenter, or InfraMissing."""
    infra.require_root()
    infra.TOOL_PACKAGES.setdefault("debootstrap", "debootstrap")
    infra.TOOL_PACKAGES.setdefault("systemd-nspawn", "systemd-container")
    tools = infra.require_tools("debootstrap", "systemd-nspawn", "nsenter", "chroot")
    if not Path("/sys/fs/cgroup/devices").is_dir():
        raise InfraMissing(
            "the systemd test machine needs cgroup v1 controllers under /sys/fs/cgroup"
        )
    return tools


def _run(argv: Sequence[str], log: Path, **kw: object) -> None:
    """Run a build step, its output appended to *log*; InfraMissing on failure."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise InfraMissing(
            f"building the systemd test machine failed at {argv[0]} {argv[1:3]} "
            f"(exit {proc.returncode}); log {log}:\n{infra.log_tail(log, 15)}"
        )


def _chroot_env() -> dict[str, str]:
    # A clean environment: the host's PIP_CERT and friends must not leak in.
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_CERT": "/etc/ssl/host-ca.crt",
        "SSL_CERT_FILE": "/etc/ssl/host-ca.crt",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def _build(root: Path, log: Path) -> None:
    """debootstrap *root* and install the project's dependencies in /opt/sd."""
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            "bookworm",
            str(root),
            _mirror(),
        ],
        log,
    )
    # The dependencies are built into wheels here (netifaces has no wheel for
    # this Python, and the machine has no compiler), then installed offline.
    wheels = root / "tmp" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "-w",
            str(wheels),
            *_project_dependencies(),
        ],
        log,
    )
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.exists():
        shutil.copy(ca, root / "etc/ssl/host-ca.crt")
    env = _chroot_env()
    _run(["chroot", str(root), "python3", "-m", "venv", "/opt/sd"], log, env=env)
    _run(
        [
            "chroot",
            str(root),
            "/opt/sd/bin/pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            "/tmp/wheels",
            *_project_dependencies(),
        ],
        log,
        env=env,
    )
    shutil.rmtree(wheels)
    (root / "etc/hostname").write_text("sd-machine\n")
    # Nothing at boot that the tests do not want (timers that run apt, ...).
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer"):
        subprocess.run(
            ["chroot", str(root), "systemctl", "disable", "--quiet", unit],
            env=env,
            capture_output=True,
        )


def base_root() -> Path:
    """The cached base root file system, built first if it is not there yet.

    Several test processes may ask at once: a lock file serialises the build, and
    a finished base is marked by a ``.complete`` file written last.
    """
    require_machine_tools()
    key = cache_key()
    root = CACHE / f"bookworm-{key}"
    if (root / ".complete").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".complete").exists():
            return root
        building = CACHE / f"building-{key}"
        shutil.rmtree(building, ignore_errors=True)
        log = CACHE / f"build-{key}.log"
        log.write_text("")
        _build(building, log)
        (building / ".complete").write_text("\n".join(PACKAGES) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        building.rename(root)
    return root


_WHEEL: dict[str, Path] = {}


def project_wheel() -> Path:
    """A wheel of this checkout (with uncommitted changes), built once per session."""
    if "wheel" in _WHEEL and _WHEEL["wheel"].exists():
        return _WHEEL["wheel"]
    out = Path(infra._mkdtemp("w"))
    # Build from a copy of the files git knows (tracked + untracked, not ignored),
    # so build leftovers in the checkout never end up in the wheel.
    files = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    src = out / "src"
    for name in filter(None, files):
        rel = name.decode()
        source = REPO_ROOT / rel
        if source.is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, src / rel)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building the project's wheel failed:\n{proc.stderr}")
    shutil.rmtree(src)
    (wheel,) = out.glob("*.whl")
    _WHEEL["wheel"] = wheel
    return wheel


def _current_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return "/"


def _machine_cgroups(name: str) -> list[Path]:
    """The cgroup directories a machine named *name* runs in, one per controller."""
    base = Path("/sys/fs/cgroup")
    dirs = [base / c / name for c in _CONTROLLERS]
    dirs.append(base / "systemd" / name)
    dirs.append(base / "memory" / _current_cgroup("memory").lstrip("/") / name)
    return dirs


def _make_cgroups(name: str) -> list[Path]:
    dirs = _machine_cgroups(name)
    for d in dirs:
        d.mkdir(exist_ok=True)
        if d.parent != Path("/sys/fs/cgroup/cpuset"):
            continue
        for f in ("cpuset.cpus", "cpuset.mems"):
            (d / f).write_text((d.parent / f).read_text())
    return dirs


class MachineError(RuntimeError):
    """The machine did not boot or did not stop; the message has its log tail."""


class Machine:
    """A booted copy of the base: systemd as PID 1, Debian's docker.service.

    ``root`` is the machine's root directory as seen from here (write files into
    the machine through :meth:`path`), ``init`` the pid of its systemd.
    """

    def __init__(self, name: str, root: Path, log: Path) -> None:
        self.name = name
        self.root = root
        self.log = log
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.init = 0
        self.boot_seconds = 0.0

    def __repr__(self) -> str:
        return f"Machine({self.name!r}, init={self.init})"

    @classmethod
    def boot(
        cls,
        base: Path,
        *,
        nspawn_args: Sequence[str] = (),
        prepare: object = None,
        timeout: float = 90.0,
    ) -> Machine:
        """Copy *base*, install the checkout, boot; return once docker is active.

        *nspawn_args* are added to systemd-nspawn's command line (``--bind-ro=``,
        ``--network-veth``...; ``{root}`` in them is the machine's root dir);
        *prepare*, if given, is called with the machine's root path before the
        boot (to add units, disable services...).
        """
        tools = require_machine_tools()
        wheel = project_wheel()
        top = infra._mkdtemp("m")
        name = f"sdm-{os.getpid()}-{secrets.token_hex(3)}"
        machine = cls(name, top / "root", top / "nspawn.log")
        started = time.monotonic()
        try:
            # An overlay over the cached base (a copy would take ~20 s); Docker's
            # own dirs are plain directories, as overlay2 cannot sit on overlayfs.
            for d in ("root", "upper", "work", "docker", "containerd"):
                (top / d).mkdir()
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "overlay",
                    "overlay",
                    "-o",
                    f"lowerdir={base},upperdir={top}/upper,workdir={top}/work",
                    str(machine.root),
                ],
                check=True,
            )
            nspawn_args = [
                f"--bind={top}/docker:/var/lib/docker",
                f"--bind={top}/containerd:/var/lib/containerd",
                *(a.replace("{root}", str(machine.root)) for a in nspawn_args),
            ]
            shutil.copy(wheel, machine.root / "tmp" / wheel.name)
            proc = subprocess.run(
                [
                    "chroot",
                    str(machine.root),
                    "/opt/sd/bin/pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--no-index",
                    f"/tmp/{wheel.name}",
                ],
                env=_chroot_env(),
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise MachineError(f"installing the checkout failed: {proc.stderr}")
            (machine.root / "tmp" / wheel.name).unlink()
            if callable(prepare):
                prepare(machine.root)
            machine._start(tools["systemd-nspawn"], list(nspawn_args))
            machine._wait_booted(timeout)
        except BaseException:
            machine.stop()
            raise
        machine.boot_seconds = time.monotonic() - started
        return machine

    def _start(self, nspawn: str, extra: list[str]) -> None:
        cgroups = _make_cgroups(self.name)

        def enter_cgroups() -> None:
            pid = str(os.getpid())
            for d in cgroups:
                (d / "cgroup.procs").write_text(pid)

        argv = [
            nspawn,
            "-D",
            str(self.root),
            "-b",
            "--private-network",
            "--register=no",
            "--keep-unit",
            "--console=pipe",
            "-M",
            self.name,
            "--system-call-filter=add_key keyctl request_key",
            *extra,
        ]
        with self.log.open("wb") as out:
            self.nspawn = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=enter_cgroups,
            )

    def _wait_booted(self, timeout: float) -> None:
        assert self.nspawn is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise MachineError(
                    f"systemd-nspawn exited with {self.nspawn.returncode}:\n"
                    f"{infra.log_tail(self.log)}"
                )
            if not self.init:
                self.init = self._find_init()
            elif (
                self.run(["systemctl", "is-active", "--quiet", "docker"]).returncode
                == 0
            ):
                break
            time.sleep(0.2)
        else:
            raise MachineError(
                f"docker.service did not become active in {timeout:.0f}s:\n"
                f"{infra.log_tail(self.log)}"
            )
        # nspawn mounts the cgroup controllers read-only; dockerd must write them
        # to start containers.
        for c in [*_CONTROLLERS, "memory"]:
            self.run(["mount", "-o", "remount,bind,rw", f"/sys/fs/cgroup/{c}"])

    def _find_init(self) -> int:
        assert self.nspawn is not None
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.nspawn.pid:
                    comm = stat.split("(", 1)[1].rsplit(")", 1)[0]
                    if comm == "systemd":
                        return int(entry)
        return 0

    # ----------------------------------------------------------------------

    def argv(self, argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        """The command line that runs *argv* inside the machine."""
        variables = {"PATH": _MACHINE_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        variables.update(env or {})
        return [
            "nsenter",
            "-t",
            str(self.init),
            "-a",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in variables.items()),
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run *argv* inside the machine; stdout and stderr captured as text."""
        return subprocess.run(
            self.argv(argv, env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(self, argv: Sequence[str], **kw: object) -> str:
        """Run *argv* inside; its stdout, or AssertionError with its output."""
        proc = self.run(argv, **kw)  # type: ignore[arg-type]
        if proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode} in {self.name}:\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    def doctor(
        self, *args: str, timeout: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        """``shipyard-doctor ARGS`` inside the machine (the checkout's wheel)."""
        return self.run(["/opt/sd/bin/shipyard-doctor", *args], timeout=timeout)

    def path(self, inside: str) -> Path:
        """A path of the machine's file system, as seen from here.

        Only for what lives on the root file system: /run and /tmp inside are
        nspawn's tmpfs mounts (use :meth:`live_path` for those).
        """
        return self.root / inside.lstrip("/")

    def live_path(self, inside: str) -> Path:
        """A path as the machine's init sees it (works for its tmpfs mounts too)."""
        return Path(f"/proc/{self.init}/root") / inside.lstrip("/")

    def docker_url(self) -> str:
        """The machine's Docker API socket, reachable from here."""
        return f"unix://{self.live_path('/run/docker.sock')}"

    def stop(self, timeout: float = 30.0) -> None:
        """One SIGTERM to systemd-nspawn (SIGKILL if it hangs), unmount, remove."""
        proc = self.nspawn
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _teardown(self.root.parent, self.name)
        self.init = 0


def _teardown(top: Path, name: str) -> None:
    with contextlib.suppress(OSError):
        infra._unmount_all_under(top)
    shutil.rmtree(top, ignore_errors=True)
    for d in _machine_cgroups(name):
        infra.remove_cgroup_tree(d)


@contextlib.contextmanager
def booted(base: Path, **kw: object) -> Iterator[Machine]:
    """``with booted(base_root()) as m:`` a machine that is always stopped."""
    machine = Machine.boot(base, **kw)  # type: ignore[arg-type]
    try:
        yield machine
    finally:
        machine.stop()


def _alive(pid: int) -> bool:
    proc = infra._read_proc(pid)
    return proc is not None and proc.state != "Z"


def reap_stale_machines() -> list[str]:
    """Stop the machines of test runs that died without teardown (SIGKILL).

    Found by their names (``sdm-<owner pid>-…``) whose owner is gone: the
    systemd-nspawn processes, then their cgroups and their ``sdt-m<pid>-`` dirs
    (another run's :func:`infra.reap_stale` may have removed a dir already).
    """
    cleaned: list[str] = []
    table = infra._process_table()
    victims = {}
    for proc in table.values():
        m = re.search(r" -M sdm-(\d+)-", f" {proc.cmdline} ")
        if (
            proc.comm == "systemd-nspawn"
            and m
            and not infra._owner_alive(int(m.group(1)))
        ):
            victims[proc.pid] = proc.starttime
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in victims):
        time.sleep(0.2)
    infra._kill_and_wait(victims)
    cleaned += [f"machine pid {pid}" for pid in victims]
    names = {d.name for d in Path("/sys/fs/cgroup/devices").glob("sdm-*-*")}
    for name in sorted(names):
        owner = re.match(r"^sdm-(\d+)-", name)
        if owner and not infra._owner_alive(int(owner.group(1))):
            for d in _machine_cgroups(name):
                infra.remove_cgroup_tree(d)
            cleaned.append(f"cgroups {name}")
    for entry in sorted(infra.TMP.glob(f"{infra.PREFIX}-m*-*")):
        owner = re.match(rf"^{infra.PREFIX}-m(\d+)-", entry.name)
        if owner and not infra._owner_alive(int(owner.group(1))):
            _teardown(entry, f"sdm-{owner.group(1)}-none")
            cleaned.append(str(entry))
    return cleaned
