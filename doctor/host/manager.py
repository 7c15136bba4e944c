"""Who manages the Docker daemon here: systemd, a snap, a user's systemd (rootless
Docker), an init script, or a hand that started it.

Unit files on disk do not say who runs dockerd: Debian's docker.service is installed
on WSL without systemd, in containers and chroots, and next to a dockerd started by
hand with its own ``--config-file``. Acting on such a unit (a drop-in, ``systemctl
restart``) changes nothing that runs, or worse. So the running process decides: its
cgroup (``system.slice/docker.service``, ``snap.docker.dockerd.service``,
``user@1000.service/…/docker.service``), its parent and its command line; and what
really runs as init (systemd only when it is PID 1: ``<run>/systemd/system`` exists,
sd_booted(3), and ``/proc/1/comm`` says so; sysvinit/``service`` with
/etc/default/docker; OpenRC with /etc/conf.d/docker). With no dockerd running, what is
installed for the init that runs decides. Paths come from ``[host] proc_dir, run_dir,
init_dir`` so tests point them at real namespaces and temp dirs.
"""

from __future__ import annotations

import enum
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.host.daemonconf import (
    DaemonSetup,
    parse_dockerd_argv,
    running_dockerd,
    running_setup,
    unit_setup,
)
from shipyard_doctor.host.initsystem import Init, detect_init
from shipyard_doctor.host.processes import cgroup_path
from shipyard_doctor.host.systemd import DOCKER_SERVICE, docker_units
from shipyard_doctor.records import record, replace

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

Argv = tuple[str, ...]


class Kind(enum.StrEnum):
    """Who starts (and so restarts) dockerd."""

    SYSTEMD = "systemd"  # a system unit, docker.service
    SNAP = "snap"  # snap.docker.dockerd.service
    SYSTEMD_USER = "systemd-user"  # rootless Docker: a unit of a user's systemd
    SYSVINIT = "sysvinit"  # /etc/init.d/docker through `service`
    OPENRC = "openrc"  # /etc/init.d/docker through `rc-service`
    MANUAL = "manual"  # started by hand or by a script: only its command line says how
    NONE = "none"  # nothing runs dockerd and nothing installed would start it


@record
class DockerManager:
    """The manager of the dockerd this host runs (or would run), with the evidence."""

    kind: Kind
    init: Init
    running: bool  # decided from a running dockerd; False: from what is installed
    pid: int | None = None
    argv: Argv = ()  # the running dockerd's command line
    config_file: str | None = None  # its --config-file
    unit: str | None = None  # the systemd unit that runs it
    uid: int | None = None  # the user whose systemd runs it (rootless)
    evidence: tuple[str, ...] = ()

    @property
    def systemd(self) -> bool:
        """The system's systemd runs it: systemctl, drop-ins and sockets apply."""
        return self.kind in (Kind.SYSTEMD, Kind.SNAP)

    def describe(self) -> str:
        what = {
            Kind.SYSTEMD: f"systemd ({self.unit or DOCKER_SERVICE})",
            Kind.SNAP: f"the docker snap ({self.unit})",
            Kind.SYSTEMD_USER: f"uid {self.uid}'s systemd ({self.unit}, rootless)",
            Kind.SYSVINIT: "the init script /etc/init.d/docker (service)",
            Kind.OPENRC: "OpenRC (/etc/init.d/docker, rc-service)",
            Kind.MANUAL: "nothing: it was started by hand or by a script",
            Kind.NONE: "nothing: no dockerd runs and no service would start one",
        }[self.kind]
        who = f"dockerd (pid {self.pid})" if self.running else "Docker (not running)"
        return f"{who} is managed by {what}; init: {self.init}"

    def _systemctl(self, *words: str) -> Argv:
        if self.kind is Kind.SYSTEMD_USER:
            return ("systemctl", "--user", *words)
        return ("systemctl", *words)

    def start_command(self, root: bool) -> str:
        """The command that starts Docker here, ``sudo`` only when not root."""
        sudo = "" if root or self.kind is Kind.SYSTEMD_USER else "sudo "
        match self.kind:
            case Kind.SYSTEMD | Kind.SYSTEMD_USER | Kind.SNAP:
                return sudo + shlex.join(
                    self._systemctl("start", self.unit or "docker")
                )
            case Kind.SYSVINIT:
                return sudo + "service docker start"
            case Kind.OPENRC:
                return sudo + "rc-service docker start"
            case _ if self.argv:
                return sudo + shlex.join(self.argv)
            case _:
                return sudo + "dockerd"

    def restart_commands(self, reset_failed: bool = False) -> tuple[Argv, ...]:
        """How to restart dockerd through its manager; () when only a hand can."""
        match self.kind:
            case Kind.SYSTEMD | Kind.SYSTEMD_USER | Kind.SNAP:
                unit = self.unit or DOCKER_SERVICE
                commands: list[Argv] = [self._systemctl("daemon-reload")]
                if reset_failed:
                    # After "Start request repeated too quickly" systemd refuses
                    # every start until the failed state is reset.
                    sockets = [f"{unit.rsplit('.', 1)[0]}.socket"]
                    commands.append(self._systemctl("reset-failed", unit, *sockets))
                commands.append(self._systemctl("restart", unit))
                return tuple(commands)
            case Kind.SYSVINIT:
                return (("service", "docker", "restart"),)
            case Kind.OPENRC:
                return (("rc-service", "docker", "restart"),)
            case _:
                return ()

    def reload_command(self) -> Argv:
        """How to make the running dockerd reread daemon.json (SIGHUP: the
        reloadable keys, live-restore among them) without stopping containers."""
        if self.kind in (Kind.SYSTEMD, Kind.SYSTEMD_USER, Kind.SNAP):
            return self._systemctl("reload", self.unit or DOCKER_SERVICE)
        return (
            ("kill", "-HUP", str(self.pid))
            if self.pid
            else ("pkill", "-HUP", "dockerd")
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "init": self.init.value,
            "running": self.running,
            "pid": self.pid,
            "unit": self.unit,
            "config_file": self.config_file,
        }


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _stat_ppid(proc_dir: str, pid: int) -> tuple[int, str]:
    """The parent pid and the process's own name, from /proc/PID/stat."""
    stat = _read(Path(proc_dir) / str(pid) / "stat")
    if ")" not in stat:
        return 0, "?"
    head, tail = stat.rsplit(")", 1)
    return int(tail.split()[1]), head.split("(", 1)[1]


def _unit_of_cgroup(path: str) -> tuple[Kind | None, str | None, int | None]:
    parts = [p for p in path.split("/") if p]
    user = next(
        (p for p in parts if p.startswith("user@") and p.endswith(".service")), None
    )
    services = [p for p in parts if p.endswith(".service")]
    if user is not None:
        inner = [p for p in services if p != user]
        uid = int(user[5:-8]) if user[5:-8].isdigit() else None
        if inner and "docker" in inner[-1]:
            return Kind.SYSTEMD_USER, inner[-1], uid
        return None, None, None
    if not services:
        return None, None, None
    service = services[-1]
    if service.startswith("snap.docker."):
        return Kind.SNAP, service, None
    if "docker" in service:
        return Kind.SYSTEMD, service, None
    return None, None, None


def docker_manager(host: Host) -> DockerManager:
    """Who manages the dockerd behind this host's API (memoised per run)."""
    return host.memo("manager.docker", lambda: _detect(host))


def _detect(host: Host) -> DockerManager:
    cfg = host.config.host
    init, init_line = detect_init(cfg.proc_dir, cfg.run_dir)
    evidence = [f"init: {init_line}"]
    init_script = Path(cfg.init_dir) / "docker"
    defaults = Path(cfg.init_dir).parent / (
        "conf.d" if init is Init.OPENRC else "default"
    )
    proc = running_dockerd(host)
    if proc is None:
        return _installed(host, init, init_script, evidence)
    flags = parse_dockerd_argv(proc.cmdline)
    found = DockerManager(
        Kind.MANUAL, init, True, proc.pid, proc.cmdline, flags.config_file
    )
    cgroup = cgroup_path(_read(Path(cfg.proc_dir) / str(proc.pid) / "cgroup"))
    ppid, _ = _stat_ppid(cfg.proc_dir, proc.pid)
    parent = _read(Path(cfg.proc_dir) / str(ppid) / "comm").strip() or "?"
    evidence.append(
        f"dockerd pid {proc.pid}: cgroup {cgroup or '?'}, parent {parent} (pid {ppid})"
        + (f", --config-file {flags.config_file}" if flags.config_file else "")
    )
    kind, unit, uid = _unit_of_cgroup(cgroup)
    if kind is Kind.SYSTEMD_USER:
        return replace(found, kind=kind, unit=unit, uid=uid, evidence=(*evidence,))
    if kind is not None:
        if init is Init.SYSTEMD:
            return replace(found, kind=kind, unit=unit, evidence=(*evidence,))
        evidence.append(
            f"its cgroup names {unit}, but systemd is not PID 1 here: not acted on"
        )
    # start-stop-daemon --background (sysvinit) or supervise-daemon (OpenRC)
    # leaves dockerd a child of PID 1 or of the supervisor.
    supervised = ppid == 1 or parent in ("supervise-daemon", "start-stop-daemon")
    if init in (Init.SYSVINIT, Init.OPENRC) and init_script.exists() and supervised:
        kind = Kind.OPENRC if init is Init.OPENRC else Kind.SYSVINIT
        conf = defaults / "docker"
        evidence.append(
            f"{init_script} starts it"
            + (f"; options in {conf}" if conf.exists() else "")
        )
        return replace(found, kind=kind, evidence=(*evidence,))
    evidence.append(
        "no service manager runs it: it was started by hand or by a script, so its "
        "own command line and "
        + (f"--config-file {flags.config_file}" if flags.config_file else "daemon.json")
        + " are what counts"
    )
    return replace(found, evidence=(*evidence,))


def _installed(
    host: Host, init: Init, init_script: Path, evidence: list[str]
) -> DockerManager:
    """No dockerd runs: what is installed for the init that runs decides."""
    unit, _sockets = docker_units(host)
    if init is Init.SYSTEMD and unit.exists:
        evidence.append(f"no dockerd runs; systemd would start {unit.describe()}")
        return DockerManager(
            Kind.SYSTEMD, init, False, unit=DOCKER_SERVICE, evidence=(*evidence,)
        )
    if unit.exists and init is not Init.SYSTEMD:
        evidence.append(
            f"{unit.describe()} is installed but does not run dockerd here: "
            "systemd is not PID 1"
        )
    # Only an init that runs services: with no init at all (a container's
    # entrypoint) a script in /etc/init.d is a leftover of the package.
    if init_script.exists() and init in (Init.SYSVINIT, Init.OPENRC):
        kind = Kind.OPENRC if init is Init.OPENRC else Kind.SYSVINIT
        evidence.append(f"no dockerd runs; {init_script} would start it")
        return DockerManager(kind, init, False, evidence=(*evidence,))
    evidence.append("no dockerd runs and no service here would start one")
    return DockerManager(Kind.NONE, init, False, evidence=(*evidence,))


def systemd_runs_docker(host: Host) -> bool:
    """systemd (PID 1) runs docker.service, so its drop-ins and sockets apply."""
    manager = host.docker_manager()
    return manager.kind is Kind.SYSTEMD and manager.unit in (None, DOCKER_SERVICE)


def managed_setup(host: Host) -> DaemonSetup | None:
    """How the next start of dockerd runs: docker.service's ExecStart when systemd
    runs it, else the running dockerd's own command line (its --config-file)."""
    unit = unit_setup(host)
    running = running_setup(host)
    if systemd_runs_docker(host):
        return unit.setup or running
    return running


def start_limit_hit(host: Host) -> bool:
    """systemd refuses to start docker.service ("Start request repeated too
    quickly"): its Result, or docker.socket's, is a start-limit hit."""
    if host.docker_manager().init is not Init.SYSTEMD:
        return False
    units = (DOCKER_SERVICE, "docker.socket")
    done = host.run_command(["systemctl", "show", "-p", "Result", *units])
    return done.ok and "start-limit-hit" in done.stdout
