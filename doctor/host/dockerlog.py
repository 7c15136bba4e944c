"""The Docker daemon's last words, and the known causes they name.

When dockerd is down, why is almost always in the last lines it wrote: a config
conflict, a socket it could not get, containerd, cgroups. Those lines are read from
``[docker] log_file`` when set (the user said where), else from the journal when
systemd runs, else from the files init scripts write (/var/log/docker.log, upstart's
/var/log/upstart/docker.log). Only the lines of the last start attempt are matched,
so an error fixed long ago is not blamed. The table holds dockerd's exact messages
(moby sources, cited per entry) with a one-line explanation and the fixes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.host import files
from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.host.initsystem import Init, detect_init
from shipyard_doctor.host.systemd import DOCKER_SERVICE
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

TAIL = 50
LOG_FILES = ("/var/log/docker.log", "/var/log/upstart/docker.log")
START_MARKER = "Starting up"  # dockerd's first line since 17.x (cmd/dockerd)


@record
class DaemonLog:
    """dockerd's last log lines, where they were read from, or why there are none."""

    source: str  # "journalctl -u docker.service" or a file path
    lines: tuple[str, ...] = ()
    problem: str = ""  # why there are no lines

    def last_attempt(self) -> tuple[str, ...]:
        """The lines of the last start attempt. In the journal an attempt begins
        with systemd's "Starting docker.service" (its start job); within it, or in
        a log file, with dockerd's "Starting up", or right after the bare error line
        a failed dockerd exits with: config errors are printed before "Starting
        up", so that marker alone would mix them with the previous attempt."""
        first = 0
        for i, line in enumerate(self.lines):
            if _SYSTEMD_START.search(line):
                first = i
        start, ended = first, False
        for i, line in enumerate(self.lines[first:], first):
            if not _from_dockerd(line):
                continue  # systemd's own lines belong to the attempt before them
            if START_MARKER in line or ended:
                start = i
            ended = _is_exit_line(line)
        return self.lines[start:]


# systemd's line when a start job of docker.service begins (systemd >= 247 adds the
# unit name before the Description).
_SYSTEMD_START = re.compile(
    r" systemd\[\d+\]: Starting (?:docker\.service\b|Docker Application Container)"
)
# The journal's short format: "Nov 25 15:00:01 host dockerd[123]: message".
_JOURNAL = re.compile(r"^\w{3} +\d+ [\d:]+ \S+ (?P<ident>[^\s\[:]+)(?:\[\d+\])?: ")
_LOGRUS = re.compile(r'^(?:time="|level=|[A-Z]{4}\[)')


def _from_dockerd(line: str) -> bool:
    m = _JOURNAL.match(line)
    return m is None or m.group("ident") == "dockerd"


def _is_exit_line(line: str) -> bool:
    """dockerd's last words are a bare line on stderr (not a logrus record)."""
    m = _JOURNAL.match(line)
    text = line[m.end() :] if m else line
    return bool(text.strip()) and not _LOGRUS.match(text)


def tail_lines(path: str, count: int = TAIL, limit: int = 256 * 1024) -> list[str]:
    """The last *count* lines of a file, reading at most *limit* bytes from its end
    (a daemon log can be gigabytes)."""
    data, cut = files.read_tail(path, limit)  # /dev/zero, a FIFO: bounded, refused
    lines = data.decode(errors="replace").splitlines()
    if cut:
        lines = lines[1:]  # the first line read is probably cut
    return lines[-count:]


@host_fact
def daemon_log(host: Host) -> DaemonLog:
    return _daemon_log(host)


def _daemon_log(host: Host) -> DaemonLog:
    configured = host.config.docker.log_file
    if configured:
        return _file_log(configured)
    if _systemd_is_init(host):
        # docker.socket too: its "service-start-limit-hit" is the start limit.
        argv = ["journalctl", "-u", DOCKER_SERVICE, "-u", "docker.socket", "-n"]
        argv += [str(TAIL), "--no-pager"]
        done = host.run_command(argv)
        source = " ".join(argv[:3])
        if not done.ok:
            return DaemonLog(source, problem=done.describe())
        lines = [ln for ln in done.stdout.splitlines() if not ln.startswith("-- ")]
        if not lines:
            why = "no entries" + ("" if host.is_root else " (run as root to read it)")
            return DaemonLog(source, problem=why)
        return DaemonLog(source, tuple(lines))
    for path in LOG_FILES:
        if Path(path).exists():
            return _file_log(path)
    return DaemonLog(
        "dockerd's log",
        problem="no journal (systemd is not running) and none of "
        f"{', '.join(LOG_FILES)} exists; set [docker] log_file to where dockerd's "
        "output goes",
    )


def _systemd_is_init(host: Host) -> bool:
    """The journal is only there when systemd really is PID 1 ([host] run_dir)."""
    cfg = host.config.host
    return detect_init(cfg.proc_dir, cfg.run_dir)[0] is Init.SYSTEMD


def _file_log(path: str) -> DaemonLog:
    try:
        return DaemonLog(path, tuple(tail_lines(path)))
    except FileNotFoundError:
        return DaemonLog(path, problem=f"{path} does not exist")
    except OSError as exc:
        return DaemonLog(path, problem=f"cannot read {path}: {exc.strerror or exc}")


@record
class KnownCause:
    """A known reason dockerd fails to start: the log line that names it, and its
    explanation and hints."""

    id: str
    title: str  # a few words for a summary line
    pattern: re.Pattern[str]
    explanation: str  # one line; {name} fields come from the pattern's groups
    hints: tuple[str, ...]

    def render(self, fields: dict[str, str]) -> tuple[str, tuple[str, ...]]:
        """The explanation and hints with the fields a log line gave filled in."""
        values = _Fields(fields)
        return (
            self.explanation.format_map(values),
            tuple(h.format_map(values) for h in self.hints),
        )


@record
class CauseMatch:
    """A known cause found in dockerd's log: the line, with its explanation and hints
    filled in from it."""

    cause: KnownCause
    line: str
    explanation: str
    hints: tuple[str, ...]


_FLAG_AND_FILE = (
    # moby daemon/config/config.go findConfigurationConflicts (moby/moby#22339, #25471)
    r"(?:with file (?P<file>\S+?): )?the following directives are specified both "
    r"as a flag and in the configuration file: hosts"
)
START_LIMIT_HINT = (
    "systemd refuses to start Docker again (its start limit was hit): "
    "systemctl reset-failed docker.service docker.socket, then systemctl start docker"
)
KNOWN_CAUSES: tuple[KnownCause, ...] = (
    KnownCause(
        "start-limit",
        "systemd's start limit was hit",
        # systemd src/core/unit.c and socket.c (docker.socket's result)
        re.compile(
            r"Start request repeated too quickly|result '(?:service-)?start-limit-hit'"
        ),
        "docker.service failed to start several times in a row (StartLimitBurst), "
        "so systemd refuses every start until its failed state is reset",
        (START_LIMIT_HINT,),
    ),
    KnownCause(
        "hosts-flag-and-file",
        '-H flags and daemon.json "hosts" conflict',
        re.compile(_FLAG_AND_FILE),
        "dockerd got -H/--host on its command line (the unit's ExecStart) and "
        '"hosts" in {file}; it refuses to start with both',
        (
            'either remove "hosts" from {file} and keep the -H flags (add '
            "-H tcp://127.0.0.1:4243 there if the Shipyard agent needs TCP)",
            "or take -H off the command line with a drop-in "
            "/etc/systemd/system/docker.service.d/hosts.conf containing [Service], "
            "ExecStart= and ExecStart={dockerd} (no -H), and list every "
            'address in {file} "hosts" (include "fd://" while docker.socket is in '
            "use); then systemctl daemon-reload && systemctl restart docker",
        ),
    ),
    KnownCause(
        "no-socket-activation",
        "-H fd:// without socket activation",
        # moby daemon/listeners/listeners_linux.go
        re.compile(r"no sockets found via socket activation"),
        "dockerd was told -H fd:// (take its sockets from systemd) but was not "
        "started through docker.socket, so it has nothing to listen on",
        (
            "start it through systemd: systemctl enable --now docker.socket && "
            "systemctl start docker.service",
            "without systemd, replace -H fd:// with -H unix:///var/run/docker.sock",
        ),
    ),
    KnownCause(
        "unknown-directive",
        "unknown key in daemon.json",
        re.compile(
            r"the following directives don't match any configuration option: "
            r"(?P<keys>.+?)\s*\"?$"
        ),
        "daemon.json has a key dockerd does not know ({keys}): a typo or an option "
        "of another Docker version",
        (
            "fix or remove {keys} in daemon.json (the reference: "
            "https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file)",
        ),
    ),
    KnownCause(
        "daemon-json-invalid",
        "daemon.json is not usable",
        re.compile(r"unable to configure the Docker daemon with file (?P<file>\S+?):"),
        "dockerd cannot use {file}",
        (
            "fix {file} (the error above says what is wrong; python3 -m json.tool "
            "{file} checks the syntax)",
        ),
    ),
    KnownCause(
        "devices-cgroup",
        "cgroups are not mounted",
        # moby daemon/daemon.go NewDaemon
        re.compile(r"Devices cgroup isn't mounted"),
        "dockerd sees no cgroup hierarchy: /sys/fs/cgroup is not mounted in its "
        "mount namespace (a container, a chroot, or `ip netns exec`, which remounts "
        "/sys)",
        (
            "mount the cgroups (cgroup v2: mount -t cgroup2 none /sys/fs/cgroup), or "
            "start dockerd in the host's mount namespace (use nsenter --net=, not ip "
            "netns exec)",
        ),
    ),
    KnownCause(
        "tcp-address-in-use",
        "its API address is taken",
        # listen errors from moby daemon/listeners (failed to load listeners: …)
        re.compile(
            r"listen tcp (?P<address>\S*:(?P<port>\d+)): bind: address already in use"
        ),
        "another program already listens on {address}, an API address dockerd was "
        "told to use",
        (
            "find it: ss -ltnp 'sport = :{port}'; stop it, or give dockerd another "
            "address in -H/hosts",
        ),
    ),
    KnownCause(
        "unix-address-in-use",
        "its API socket is taken",
        re.compile(r"listen unix (?P<address>\S+): bind: address already in use"),
        "{address} is taken: probably another dockerd is serving it",
        ("look for it: ps -C dockerd -o pid,args; stop one of the two daemons",),
    ),
    KnownCause(
        "pidfile",
        "a pid file of another dockerd",
        re.compile(
            r"pid file found, ensure docker is not running or delete (?P<f>\S+)"
        ),
        "a pid file says another dockerd runs ({f})",
        ("if no dockerd runs (ps -C dockerd), delete {f} and start Docker again",),
    ),
    KnownCause(
        "containerd",
        "containerd did not start",
        re.compile(
            r"failed to start containerd|containerd did not start|timeout waiting for "
            r"containerd to start|failed to dial \S*containerd\.sock"
        ),
        "dockerd could not start or reach containerd, which runs its containers",
        (
            "systemctl status containerd (start it: systemctl start containerd); "
            "check that the containerd binary is installed and on dockerd's PATH "
            "(Debian: apt-get install containerd)",
        ),
    ),
)


def known_causes(
    lines: tuple[str, ...] | list[str], defaults: dict[str, str] | None = None
) -> list[CauseMatch]:
    """Each known cause found in *lines*, once, with the last line that shows it;
    *defaults* fill the fields a line does not give (the daemon.json path, dockerd).

    A more specific daemon.json cause hides the generic "cannot use daemon.json".
    """
    found: dict[str, CauseMatch] = {}
    for line in lines:
        if "userland proxy" in line or "programming external connectivity" in line:
            continue  # a container's port, not the daemon's own API address
        for cause in KNOWN_CAUSES:
            m = cause.pattern.search(line)
            if m is None:
                continue
            fields = {**(defaults or {})}
            fields.update({k: v for k, v in m.groupdict().items() if v})
            found[cause.id] = CauseMatch(cause, line.strip(), *cause.render(fields))
            break
    if "daemon-json-invalid" in found and (
        {"hosts-flag-and-file", "unknown-directive"} & found.keys()
    ):
        del found["daemon-json-invalid"]
    return list(found.values())


def explain(cause_id: str, **fields: str) -> tuple[str, tuple[str, ...]]:
    """A known cause's explanation and hints without a log line (a predicted one)."""
    cause = next(c for c in KNOWN_CAUSES if c.id == cause_id)
    return cause.render(fields)


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return {
            "file": "daemon.json",
            "keys": "the keys named above",
            "dockerd": "/usr/bin/dockerd",
        }.get(key, key)


def drop_stale(matches: list[CauseMatch], daemon_json: str) -> list[CauseMatch]:
    """The matches that still hold: an unknown daemon.json key that has been
    removed since (while systemd's start limit keeps dockerd from starting
    again, the journal's last dockerd lines are from before the edit) is not
    blamed any more."""
    kept = []
    for m in matches:
        if m.cause.id == "unknown-directive":
            # The line names the file dockerd read (its --config-file).
            named = re.search(r"with file (\S+?):", m.line)
            current = _read_text(named.group(1) if named else daemon_json)
            found = m.cause.pattern.search(m.line)
            keys = re.findall(r"[\w.-]+", found.group("keys")) if found else []
            if (
                keys
                and current is not None
                and not any(f'"{key}"' in current for key in keys)
            ):
                continue
        kept.append(m)
    if len(kept) < len(matches):
        kept = [m for m in kept if m.cause.id != "daemon-json-invalid"]
    return kept


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_more(source: str) -> str:
    """The command that shows more of the log read from ``source``."""
    if source.startswith("journalctl"):
        return "journalctl -u docker.service -n 200 --no-pager"
    return f"tail -n 200 {source}"
