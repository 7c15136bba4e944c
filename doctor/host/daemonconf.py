"""How dockerd is told where to listen: -H flags, daemon.json, and the unit behind it.

Three sources decide the Docker API's addresses, and two of them must not both set
them: ``-H``/``--host`` on dockerd's command line (the running process, or the
systemd unit's ExecStart) and ``"hosts"`` in daemon.json. When both do, dockerd
refuses to start ("the following directives are specified both as a flag and in the
configuration file: hosts", moby/moby#22339, #25471), so the doctor predicts it
before anyone restarts. TLS verification is read from the same places, because a
TCP address beyond loopback without it makes anyone who can reach it root.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard_doctor.host import files
from shipyard_doctor.host.dockerapi import DockerProbe, parse_endpoint, probe
from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.host.sockets import socket_owners
from shipyard_doctor.host.systemd import command_argv, docker_units, unit_environment
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host, ProcessInfo
    from shipyard_doctor.host.sockets import Listener
    from shipyard_doctor.host.systemd import Unit

DEFAULT_UNIX = "unix:///var/run/docker.sock"  # dockerd's default without any host
DEFAULT_CONFIG_FILE = "/etc/docker/daemon.json"


DEFAULT_DATA_ROOT = "/var/lib/docker"

# Flags that take a value, by every spelling dockerd has had (-g/--graph before 17.05).
_VALUE_FLAGS = {
    "H": "host",
    "host": "host",
    "config-file": "config-file",
    "data-root": "data-root",
    "g": "data-root",
    "graph": "data-root",
    "firewall-backend": "firewall-backend",
}
# Boolean flags: bare means true; pflag only reads a value in the ``--flag=false``
# form (a separate ``false`` would be a positional argument).
_BOOL_FLAGS = ("tls", "tlsverify", "iptables", "ip-forward")


@record
class DockerdFlags:
    """What a dockerd command line says (None: the flag is not given)."""

    hosts: tuple[str, ...] = ()
    config_file: str | None = None
    tls: bool | None = None
    tlsverify: bool | None = None
    data_root: str | None = None
    iptables: bool | None = None
    ip_forward: bool | None = None
    firewall_backend: str | None = None


def parse_dockerd_argv(argv: Sequence[str]) -> DockerdFlags:
    """The dockerd flags the doctor reads, as Go's pflag accepts them: ``-H x``,
    ``-H=x``, ``-Hx``, ``--host=x``; booleans bare or ``=true|false``. The 2014 form
    ``docker -d -H fd://`` parses the same way."""
    values: dict[str, list[str]] = {}
    bools: dict[str, bool] = {}
    words = list(argv[1:])
    i = 0
    while i < len(words):
        word = words[i]
        name, sep, inline = word.partition("=")
        long = name.lstrip("-")
        if word.startswith("-H") and len(word) > 2 and not sep:
            values.setdefault("host", []).append(word[2:])  # -Htcp://... (attached)
        elif long in _VALUE_FLAGS and word.startswith("-"):
            if not sep and i + 1 < len(words):
                i += 1
                inline = words[i]
            values.setdefault(_VALUE_FLAGS[long], []).append(inline)
        elif long in _BOOL_FLAGS and word.startswith("-"):
            bools[long] = inline.lower() not in ("false", "0") if sep else True
        i += 1

    def last(key: str) -> str | None:
        return values[key][-1] if values.get(key) else None

    return DockerdFlags(
        hosts=tuple(values.get("host", ())),
        config_file=last("config-file"),
        tls=bools.get("tls"),
        tlsverify=bools.get("tlsverify"),
        data_root=last("data-root"),
        iptables=bools.get("iptables"),
        ip_forward=bools.get("ip-forward"),
        firewall_backend=last("firewall-backend"),
    )


def read_json_object(path: str) -> dict[str, Any]:
    """A JSON object from a file; {} when it is absent, unreadable or not an object
    (for files whose absence just means defaults: the docker CLI's config, ...)."""
    try:
        value = json.loads(files.read_text(path))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@record
class DaemonJson:
    """dockerd's daemon.json as read: its ``"hosts"`` and TLS settings, or the error."""

    path: str
    exists: bool
    error: str = ""  # unreadable or not a JSON object
    hosts: tuple[str, ...] | None = None  # None: no "hosts" key
    tls: bool | None = None
    tlsverify: bool | None = None
    content: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if not self.exists:
            return "does not exist"
        return 'no "hosts"' if self.hosts is None else f"hosts {list(self.hosts)}"


def read_daemon_json(path: str) -> DaemonJson:
    try:
        text = files.read_text(path, errors="replace")  # bad bytes: invalid JSON
    except FileNotFoundError:
        return DaemonJson(path, False)
    except OSError as exc:
        return DaemonJson(path, True, f"cannot read it: {exc.strerror or exc}")
    try:
        content = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        return DaemonJson(path, True, f"invalid JSON: {exc}")
    if not isinstance(content, dict):
        return DaemonJson(path, True, "not a JSON object")
    hosts = content.get("hosts")
    return DaemonJson(
        path,
        True,
        hosts=None if hosts is None else tuple(str(h) for h in hosts),
        tls=_bool(content.get("tls")),
        tlsverify=_bool(content.get("tlsverify")),
        content=content,
    )


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


@record
class ApiAddress:
    """One API address as dockerd normalises it (moby opts/hosts.go ParseHost)."""

    text: str  # as written
    scheme: str  # unix | tcp | fd | other
    host: str = ""
    port: int = 0

    @property
    def url(self) -> str:
        if self.scheme != "tcp":
            return self.text
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.scheme != "tcp":
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to anything

    @property
    def everywhere(self) -> bool:
        return self.scheme == "tcp" and self.host in ("0.0.0.0", "::")


def parse_api_address(text: str, tls: bool = False) -> ApiAddress:
    value = text.strip()
    if "://" not in value:
        value = "tcp://" + value  # dockerd reads "0.0.0.0:2375" as tcp
    scheme = value.split("://", 1)[0]
    if scheme != "tcp":
        return ApiAddress(text, scheme if scheme in ("unix", "fd") else "other")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    # An empty host means localhost in dockerd (opts.DefaultHTTPHost).
    return ApiAddress(
        text, "tcp", parts.hostname or "localhost", port or (2376 if tls else 2375)
    )


@record
class DaemonSetup:
    """How dockerd runs (or will run): its command line and its daemon.json."""

    origin: str  # e.g. "running dockerd (pid 42)" or "docker.service ExecStart"
    argv: tuple[str, ...]
    flags: DockerdFlags
    daemon_json: DaemonJson

    @property
    def hosts(self) -> tuple[str, ...]:
        if self.flags.hosts:
            return self.flags.hosts
        return self.daemon_json.hosts or (DEFAULT_UNIX,)

    @property
    def tls(self) -> bool:
        return bool(self.flags.tls or self.daemon_json.tls or self.tlsverify)

    @property
    def tlsverify(self) -> bool:
        if self.flags.tlsverify is not None:
            return self.flags.tlsverify
        return bool(self.daemon_json.tlsverify)

    def addresses(self) -> tuple[ApiAddress, ...]:
        return tuple(parse_api_address(h, self.tls) for h in self.hosts)

    @property
    def data_root(self) -> str:
        content = self.daemon_json.content or {}
        root = self.flags.data_root or content.get("data-root") or content.get("graph")
        return str(root or DEFAULT_DATA_ROOT)

    def iptables(self) -> tuple[bool, str]:
        """Whether dockerd manages iptables, and where that setting came from."""
        content = self.daemon_json.content or {}
        path = self.daemon_json.path
        if self.flags.firewall_backend == "nftables":
            return False, "--firewall-backend=nftables on its command line"
        if self.flags.firewall_backend is None and (
            content.get("firewall-backend") == "nftables"
        ):
            return False, f'"firewall-backend": "nftables" in {path}'
        if self.flags.iptables is not None:
            value = str(self.flags.iptables).lower()
            return self.flags.iptables, f"--iptables={value} on its command line"
        if isinstance(content.get("iptables"), bool):
            value = str(content["iptables"]).lower()
            return content["iptables"], f'"iptables": {value} in {path}'
        return True, "the default"

    @property
    def nftables(self) -> bool:
        backend = self.flags.firewall_backend or (self.daemon_json.content or {}).get(
            "firewall-backend"
        )
        return backend == "nftables"

    @property
    def ip_forward(self) -> bool:
        if self.flags.ip_forward is not None:
            return self.flags.ip_forward
        return (self.daemon_json.content or {}).get("ip-forward") is not False

    @property
    def conflict(self) -> str | None:
        """dockerd's own error, when -H and daemon.json "hosts" are both set."""
        if not self.flags.hosts or not self.daemon_json.hosts:
            return None
        return (
            f"unable to configure the Docker daemon with file {self.daemon_json.path}: "
            "the following directives are specified both as a flag and in the "
            f"configuration file: hosts: (from flag: [{' '.join(self.flags.hosts)}], "
            f"from file: [{' '.join(self.daemon_json.hosts)}])"
        )


def setup_from_argv(origin: str, argv: Sequence[str], default_json: str) -> DaemonSetup:
    flags = parse_dockerd_argv(argv)
    return DaemonSetup(
        origin, tuple(argv), flags, read_daemon_json(flags.config_file or default_json)
    )


@record
class UnitSetup:
    """docker.service's effective ExecStart, and what it cannot tell by itself."""

    unit: Unit
    sockets: tuple[Unit, ...]
    exec_start: str | None  # the last ExecStart= value, as written
    setup: DaemonSetup | None
    notes: tuple[str, ...]  # unset variables, missing EnvironmentFile=, …


@host_fact
def unit_setup(host: Host) -> UnitSetup:
    """The docker.service that systemd would start next, with its daemon.json."""

    unit, sockets = docker_units(host)
    commands = unit.values("Service", "ExecStart")
    if not unit.exists or not commands:
        return UnitSetup(unit, sockets, None, None, ())
    env, notes = unit_environment(unit)
    argv, unset = command_argv(commands[-1], env)
    notes += [f"${name} is not set, so it adds nothing" for name in unset]
    setup = setup_from_argv(
        f"{unit.name} ExecStart", argv, host.config.docker.daemon_json
    )
    return UnitSetup(unit, sockets, commands[-1], setup, tuple(notes))


@host_fact
def running_dockerd(host: Host) -> ProcessInfo | None:
    """The dockerd behind this host's API: one in the doctor's own network namespace
    (others, in containers or test namespaces, serve other "hosts"), preferring the
    one that serves ``[docker] host``."""

    here = [
        p for p in host.dockerd_processes() if host.in_own_netns(p.pid) is not False
    ]
    wanted = parse_endpoint(host.config.docker.host)
    for proc in here:
        setup = setup_from_argv("", proc.cmdline, host.config.docker.daemon_json)
        for address in setup.addresses():
            if (
                address.scheme == "unix"
                and wanted.is_unix
                and parse_endpoint(address.text).path == wanted.path
            ):
                return proc
    return here[0] if here else None


def running_setup(host: Host) -> DaemonSetup | None:
    proc = running_dockerd(host)
    if proc is None or not proc.cmdline:
        return None
    return setup_from_argv(
        f"running dockerd (pid {proc.pid})",
        proc.cmdline,
        host.config.docker.daemon_json,
    )


@host_fact
def tcp_probe(host: Host) -> DockerProbe:
    """/_ping at ``[docker] tcp``, where the Shipyard agent <= v0.2.5 expects Docker."""
    cfg = host.config.docker
    return probe(
        parse_endpoint(f"tcp://{cfg.tcp}"), host.docker_timeout, cfg.min_api_version
    )


def api_listeners(host: Host) -> list[tuple[Listener, ProcessInfo]]:
    """TCP sockets listening for the Docker API here: held by dockerd itself, or by
    systemd (pid 1) for a socket unit that activates docker.service."""
    return host.memo("daemonconf.api_listeners", lambda: _api_listeners(host))


def _api_listeners(host: Host) -> list[tuple[Listener, ProcessInfo]]:
    unit = unit_setup(host)
    socket_ports = {
        parse_listen_stream(spec)[1]
        for sock in unit.sockets
        for spec in sock.values("Socket", "ListenStream")
    }
    listeners = host.tcp_listeners()
    pids = socket_owners(item.inode for item in listeners)
    # One process lookup per owner, not per socket: a busy host has thousands of
    # listeners held by a handful of processes (15,000 sockets took over 5 s).
    processes = {pid: host.process(pid) for pid in set(pids.values())}
    found = []
    for item in listeners:
        owner = processes.get(pids.get(item.inode, -1))
        if owner is None:
            continue
        if owner.name in ("dockerd", "docker") or (
            owner.pid == 1 and item.port in socket_ports
        ):
            found.append((item, owner))
    return found


def parse_listen_stream(spec: str) -> tuple[str, int | None]:
    """(address, port) of a ``ListenStream=``: "4243" is every address, "/path" a
    unix socket (port None), "127.0.0.1:4243" or "[::1]:4243" one address."""
    if spec.startswith(("/", "@")):
        return spec, None
    if spec.isdigit():
        return "", int(spec)
    address, _, port = spec.rpartition(":")
    return address.strip("[]"), int(port) if port.isdigit() else None


def exposures(host: Host, running: DaemonSetup | None, unit: UnitSetup) -> list[str]:
    """Every TCP address of the API beyond loopback that has no TLS verification:
    from the running daemon, from the unit's next start, from what listens now, and
    from enabled socket units."""
    found: dict[str, str] = {}
    for setup in (running, unit.setup):
        if setup is None or setup.tlsverify:
            continue
        source = setup.origin
        if not setup.flags.hosts and setup.daemon_json.hosts:
            source = f"{setup.daemon_json.path} via {setup.origin}"
        for address in setup.addresses():
            if not address.loopback:
                found.setdefault(address.url, f"{address.url} (from {source})")
    verified = bool(running and running.tlsverify)
    for item, owner in api_listeners(host):
        address = parse_api_address(f"tcp://{item.endpoint}")
        if not address.loopback and not verified:
            found.setdefault(
                address.url, f"{item.endpoint} ({owner.name}, pid {owner.pid}, listens)"
            )
    if not (unit.setup and unit.setup.tlsverify):
        for sock in unit.sockets:
            for spec in sock.values("Socket", "ListenStream"):
                where, port = parse_listen_stream(spec)
                if port is None or not sock.enabled_in:
                    continue
                address = parse_api_address(f"tcp://{where or '0.0.0.0'}:{port}")
                if not address.loopback:
                    everywhere = " — every address" if not where else ""
                    found.setdefault(
                        address.url,
                        f"{address.url} ({sock.name} ListenStream={spec}{everywhere})",
                    )
    return list(found.values())
