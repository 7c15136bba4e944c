"""systemd units as systemd itself reads them: which file wins, which drop-ins apply.

How Docker is started on a systemd host is not in one file: the vendor unit
(/lib/systemd/system/docker.service), a full copy in /etc/systemd/system that masks it
forever (the CoreOS 2014 advice), drop-ins in docker.service.d/*.conf where an empty
``ExecStart=`` resets the command, and sockets (docker.socket, CoreOS's
docker-tcp.socket) that hand dockerd its listeners through ``-H fd://``. This module
resolves them from ``[host] systemd_dirs`` in systemd's precedence order, so tests
point it at real unit files in temp dirs. When systemd is PID 1, ``systemctl show``
adds what the manager has actually loaded.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.host import files
from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.host.initsystem import Init, detect_init
from shipyard_doctor.records import field, record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

#: sd_booted(3): this directory exists exactly when systemd is the init system.
SYSTEMD_RUNTIME_DIR = Path("/run/systemd/system")
DOCKER_SERVICE = "docker.service"


@record
class Unit:
    """One unit after merging its file and drop-ins (later assignments win)."""

    name: str
    fragment: Path | None  # the unit file that wins; None: no such unit
    dropins: tuple[Path, ...] = ()
    shadowed: tuple[Path, ...] = ()  # lower-precedence copies the fragment hides
    settings: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    masked: bool = False  # linked to /dev/null
    enabled_in: tuple[Path, ...] = ()  # *.wants/ dirs that pull it in

    @property
    def exists(self) -> bool:
        return self.fragment is not None and not self.masked

    def values(self, section: str, key: str) -> tuple[str, ...]:
        return tuple(self.settings.get(section, {}).get(key, ()))

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        return found[-1] if found else None

    def describe(self) -> str:
        if self.fragment is None:
            return f"{self.name}: no unit file"
        if self.masked:
            return f"{self.name}: masked ({self.fragment} -> /dev/null)"
        text = f"{self.name}: {self.fragment}"
        if self.dropins:
            text += " + drop-ins " + ", ".join(str(p) for p in self.dropins)
        return text


def parse_unit_text(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) assignments in file order (systemd.syntax(7)).

    Comments start with # or ; at the beginning of a line; a trailing backslash
    joins the next line with a space.
    """
    assignments: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if pending:
            if line.startswith(("#", ";")):
                continue  # comments inside a continued line are skipped
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if sep:
            assignments.append((section, key.strip(), value.strip()))
    if pending:
        key, sep, value = pending.partition("=")
        if sep:
            assignments.append((section, key.strip(), value.strip()))
    return assignments


def _unique_dirs(dirs: Sequence[str]) -> list[Path]:
    # /lib is a symlink to /usr/lib on merged-/usr systems: read each dir once.
    seen: set[str] = set()
    unique = []
    for d in dirs:
        real = os.path.realpath(d)
        if real not in seen:
            seen.add(real)
            unique.append(Path(d))
    return unique


def load_unit(name: str, dirs: Sequence[str]) -> Unit:
    """Resolve *name* across *dirs* (highest precedence first), as systemd does.

    The first dir holding the unit file wins; drop-in files are collected from
    every dir's ``<name>.d/``, a name in a higher dir hiding the same name below,
    and applied sorted by file name.
    """
    paths = _unique_dirs(dirs)
    found = [d / name for d in paths if (d / name).is_file() or (d / name).is_symlink()]
    fragment = found[0] if found else None
    masked = fragment is not None and os.path.realpath(fragment) == os.devnull
    dropins: dict[str, Path] = {}
    for d in paths:
        folder = d / f"{name}.d"
        if folder.is_dir():
            for conf in folder.glob("*.conf"):
                dropins.setdefault(conf.name, conf)
    ordered = tuple(dropins[key] for key in sorted(dropins))
    settings: dict[str, dict[str, list[str]]] = {}
    if fragment is not None and not masked:
        for path in (fragment, *ordered):
            for section, key, value in parse_unit_text(_read(path)):
                values = settings.setdefault(section, {}).setdefault(key, [])
                if value == "":
                    values.clear()  # an empty assignment resets a list setting
                else:
                    values.append(value)
    enabled = tuple(
        wants
        for d in paths
        for wants in d.glob("*.wants")
        if (wants / name).exists() or (wants / name).is_symlink()
    )
    return Unit(
        name,
        fragment,
        ordered if not masked else (),
        tuple(found[1:]),
        {s: {k: tuple(v) for k, v in keys.items()} for s, keys in settings.items()},
        masked,
        enabled,
    )


def _read(path: Path) -> str:
    try:
        return files.read_text(path, errors="replace")
    except OSError:
        return ""


def sockets_for(service: str, dirs: Sequence[str]) -> tuple[Unit, ...]:
    """Socket units that activate *service*: the same-named one (docker.socket) and
    any with ``Service=`` naming it (CoreOS's docker-tcp.socket)."""
    stem = service.rsplit(".", 1)[0]
    names = {f"{stem}.socket"}
    for d in _unique_dirs(dirs):
        for path in d.glob("*.socket"):
            if any(
                s == "Socket" and k == "Service" and v == service
                for s, k, v in parse_unit_text(_read(path))
            ):
                names.add(path.name)
    units = (load_unit(n, dirs) for n in sorted(names))
    return tuple(u for u in units if u.fragment is not None)


def unit_environment(unit: Unit) -> tuple[dict[str, str], list[str]]:
    """Variables from ``Environment=`` and ``EnvironmentFile=``, and notes on files
    that could not be read (a missing ``-`` file is silently allowed by systemd)."""
    env: dict[str, str] = {}
    notes: list[str] = []
    for spec in unit.values("Service", "EnvironmentFile"):
        optional = spec.startswith("-")
        path = Path(spec.lstrip("-"))
        try:
            text = files.read_text(path, errors="replace")
        except OSError as exc:
            what = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
            notes.append(
                f"EnvironmentFile={spec} is {what}"
                + (" (allowed by the '-')" if optional else "")
            )
            continue
        env.update(parse_env_file(text))
    for spec in unit.values("Service", "Environment"):
        for word in _split(spec):
            key, sep, value = word.partition("=")
            if sep:
                env[key] = value
    return env, notes


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (quotes removed)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip().removeprefix("export ").strip()] = value
    return env


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def command_argv(
    command: str, env: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """argv of one ``ExecStart=`` value and the variables it uses that are unset.

    As systemd.service(5) says: a word that is exactly ``$VAR`` is split at
    whitespace, ``${VAR}`` stays one word; the prefixes ``-@:+!`` are dropped.
    """
    words = _split(command.lstrip("-@:+!"))
    argv: list[str] = []
    unset: list[str] = []
    for word in words:
        for m in _VAR.finditer(word):
            if (m.group(1) or m.group(2)) not in env:
                unset.append(m.group(1) or m.group(2))
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
        else:
            argv.append(_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word))
    return tuple(argv), tuple(dict.fromkeys(unset))


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: systemd would reject it, show words
        return text.split()


# --- the live manager --------------------------------------------------------------


def systemd_running() -> bool:
    return SYSTEMD_RUNTIME_DIR.is_dir()


def parse_systemctl_show(text: str) -> dict[str, str]:
    """``systemctl show`` output: one KEY=VALUE per line, the value may hold '='."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            props[key] = value
    return props


def exec_property_argvs(value: str) -> list[tuple[str, ...]]:
    """The argv of each command in an Exec* property, which systemctl prints as
    ``{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// ; … }``."""
    return [
        tuple(_split(m.group(1)))
        for m in re.finditer(r"argv\[\]=(.*?)(?: ; \w+=|\s*\}|$)", value)
    ]


@record
class ManagerView:
    """What systemd (PID 1) has loaded for a unit, from ``systemctl show``."""

    fragment: str
    dropins: tuple[str, ...]
    exec_start: tuple[tuple[str, ...], ...]
    triggered_by: tuple[str, ...]
    active: str
    need_reload: bool


@host_fact
def manager_view(host: Host, unit: str = DOCKER_SERVICE) -> ManagerView | None:
    """None when systemd is not PID 1 or systemctl cannot answer."""
    cfg = host.config.host
    if detect_init(cfg.proc_dir, cfg.run_dir)[0] is not Init.SYSTEMD:
        return None

    done = host.run_command(
        [
            "systemctl",
            "show",
            unit,
            "-p",
            "FragmentPath",
            "-p",
            "DropInPaths",
            "-p",
            "ExecStart",
            "-p",
            "TriggeredBy",
            "-p",
            "ActiveState",
            "-p",
            "NeedDaemonReload",
        ]
    )
    if not done.ok:
        return None
    props = parse_systemctl_show(done.stdout)
    return ManagerView(
        props.get("FragmentPath", ""),
        tuple(props.get("DropInPaths", "").split()),
        tuple(exec_property_argvs(props.get("ExecStart", ""))),
        tuple(props.get("TriggeredBy", "").split()),
        props.get("ActiveState", ""),
        props.get("NeedDaemonReload", "no") == "yes",
    )


@host_fact
def docker_units(host: Host) -> tuple[Unit, tuple[Unit, ...]]:
    """docker.service and the sockets that activate it, from ``[host] systemd_dirs``."""
    dirs = host.config.host.systemd_dirs
    return load_unit(DOCKER_SERVICE, dirs), sockets_for(DOCKER_SERVICE, dirs)
