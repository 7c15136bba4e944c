"""One configuration for the whole tool: a TOML file, then command-line overrides.

Where the file comes from: ``--config PATH``, else ``$SHIPYARD_DOCTOR_CONFIG``, else
``/etc/shipyard-doctor/config.toml`` if it exists, else built-in defaults. Every problem
with the file (syntax, unknown key, wrong type) is a :class:`ConfigError` naming the
file, the key and, where it can be found, the line.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard_doctor import validate
from shipyard_doctor.errors import ConfigError
from shipyard_doctor.records import field, record, replace
from shipyard_doctor.stacks import load_stack

DEFAULT_PATH = Path("/etc/shipyard-doctor/config.toml")
ENV_VAR = "SHIPYARD_DOCTOR_CONFIG"
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"
#: A config file is a few hundred bytes; anything past this is not one.
MAX_CONFIG_BYTES = 1024 * 1024


@record
class DockerConfig:
    """The ``[docker]`` table: how to reach dockerd, and where its files are."""

    host: str = DEFAULT_DOCKER_SOCKET
    tcp: str = "127.0.0.1:4243"  # where the Shipyard agent (<= v0.2.5) expects the API
    timeout: float = 3.0
    min_api_version: str = "1.24"  # the oldest API the docker SDK still speaks
    host_origin: str = "default"  # where `host` came from, shown as evidence
    daemon_json: str = "/etc/docker/daemon.json"
    log_file: str = ""  # dockerd's log when not in the journal; "" = look for it
    restart_command: str = ""  # how to restart dockerd without systemd (fixes)


@record
class AgentConfig:
    """The ``[agent]`` table: where the Shipyard agent and its libraries are."""

    binary: str = ""  # the shipyard-agent binary; "" = $PATH, then /opt/shipyard/bin
    lib_dir: str = "/opt/shipyard/lib"  # a writable place for libraries it needs


@record
class StackConfig:
    """The ``[stack]`` table: the Shipyard stack to check and deploy, its host ports,
    image substitutes and where its secrets are kept."""

    name: str = "v1"
    ports: Mapping[str, int] = field(default_factory=dict)
    # deploy: the stack's image -> the image to use instead (mirror, rebuilt image)
    images: Mapping[str, str] = field(default_factory=dict)
    # deploy: where the stack's generated secrets are kept (files mode 0600)
    state_dir: str = "/var/lib/shipyard-doctor/stacks"


@record
class ChecksConfig:
    """The ``[checks]`` table: the timeout per check, the checks to skip or ignore."""

    timeout: float = 5.0
    skip: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


@record
class HostConfig:
    """The ``[host]`` table: where the doctor reads this host (binaries, libraries,
    units, DHCP leases, the kernel's tables); tests point it at temp dirs."""

    # Where to look for binaries such as dockerd after $PATH: a normal user's PATH on
    # Debian lacks /usr/sbin, where docker.io installs dockerd; CoreOS uses /opt/bin.
    bin_dirs: tuple[str, ...] = (
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/opt/bin",
    )
    lib_dirs: tuple[str, ...] = ()  # searched like the loader's default dirs
    ld_so_cache: str = "/etc/ld.so.cache"
    ld_so_conf: str = "/etc/ld.so.conf"  # which ld.so.conf.d dirs ldconfig reads
    ld_so_conf_dir: str = "/etc/ld.so.conf.d"
    systemd_dirs: tuple[str, ...] = (
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/local/lib/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
    )
    dmi_dir: str = "/sys/class/dmi/id"
    lease_dirs: tuple[str, ...] = (
        "/var/lib/dhcp",
        "/var/lib/dhclient",
        "/var/lib/NetworkManager",
        "/run/systemd/netif/leases",
        "/var/lib/dhcpcd",
        "/var/db/dhcpcd",
        "/var/db",
    )
    # The script the dhcp fix gives a dhclient it starts when no running client
    # names one (-sf); "" = dhclient's own, allowed only in PID 1's network namespace.
    dhclient_script: str = ""
    # Where the kernel's tables are read from (sockets, routes, mountinfo, ip_forward,
    # cgroups, PID 1, cpuinfo): point it at a recorded tree (tests, a mounted image)
    # instead of this machine's. /sys is read only for DMI, through dmi_dir.
    proc_dir: str = "/proc"
    # The distribution; files that mark a container; the init scripts' defaults
    # files that hold dockerd's options (report).
    os_release: str = "/etc/os-release"
    # Who manages dockerd (doctor/host/manager.py) also reads PID 1 from proc_dir,
    # systemd runtime dir (<run_dir>/systemd/system exists when it is PID 1) and the
    # init scripts (/etc/init.d/docker, with /etc/default/docker or OpenRC conf.d).
    run_dir: str = "/run"
    init_dir: str = "/etc/init.d"
    container_markers: tuple[str, ...] = (
        "/.dockerenv",
        "/run/.containerenv",
        "/run/systemd/container",
    )
    init_defaults: tuple[str, ...] = (
        "/etc/default/docker",
        "/etc/conf.d/docker",
        "/etc/sysconfig/docker",
    )


@record
class ReportConfig:
    """The ``[report]`` table: how long each collector of ``report`` may take and how
    much of each log it keeps."""

    timeout: float = 5.0  # seconds per collector of `report`
    log_lines: int = 50  # last lines of each container's and dockerd's log


@record
class FixConfig:
    """The ``[fix]`` table: where fixes keep the backups and records ``undo`` uses."""

    journal_dir: str = "/var/lib/shipyard-doctor/journal"  # backups for `undo`


@record
class Config:
    """The whole configuration: one field per table of the file, and the file itself."""

    docker: DockerConfig = field(default_factory=DockerConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    host: HostConfig = field(default_factory=HostConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    fix: FixConfig = field(default_factory=FixConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    source: Path | None = None  # the file the values came from, if any


# --- value validators: each returns the converted value or raises ValueError ---------


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, str):  # TOML has numbers: "5" is a type error here
        raise ValueError("must be a positive number of seconds")
    return validate.seconds(value)


def _id_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of check ids, e.g. ["ports"]')
    return tuple(value)


def _dir_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.startswith("/") and "\x00" not in v for v in value
    ):
        raise ValueError('must be a list of absolute paths, e.g. ["/opt/bin"]')
    return tuple(value)


_port = validate.port


def _api_version(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+", value):
        raise ValueError('must be an API version such as "1.24"')
    return value


_path = validate.path


def _root(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError('must be an absolute path, e.g. "/proc"')
    if "\x00" in value or not os.path.isdir(value):
        # Every check reads the process tables under it: none could run.
        raise ValueError(
            'must be an existing directory (the proc file system, "/proc")'
        )
    return value


def _command(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('must be a command line, e.g. "service docker restart"')
    return value


def _line_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10000:
        raise ValueError("must be a number of lines from 0 to 10000")
    return value


_tcp_address = validate.tcp_address
_docker_url = validate.docker_url


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a table, e.g. [stack.ports] with shipyard = 8001")
    return value


# An image reference: [registry[:port]/]path[:tag][@digest], lower-case path.
IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def _image_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError('must be a table, e.g. "shipyard/redis" = "mirror/redis:2014"')
    for ref in (*value, *value.values()):
        if not IMAGE_REF.match(ref):
            raise ValueError(f"has {ref!r}, which is not an image reference")
    return dict(value)


Validator = Callable[[Any], Any]
SCHEMA: dict[str, dict[str, Validator]] = {
    "docker": {
        "host": _docker_url,
        "tcp": _tcp_address,
        "timeout": _seconds,
        "min_api_version": _api_version,
        "daemon_json": _path,
        "log_file": _path,
        "restart_command": _command,
    },
    "agent": {"binary": _path, "lib_dir": _path},
    "fix": {"journal_dir": _path},
    # ports is checked against the stack
    "stack": {
        "name": _string,
        "ports": _table,
        "images": _image_map,
        "state_dir": _path,
    },
    "checks": {"timeout": _seconds, "skip": _id_list, "ignore": _id_list},
    "host": {
        "bin_dirs": _dir_list,
        "lib_dirs": _dir_list,
        "ld_so_cache": _path,
        "ld_so_conf": _path,
        "ld_so_conf_dir": _path,
        "systemd_dirs": _dir_list,
        "dmi_dir": _path,
        "lease_dirs": _dir_list,
        "dhclient_script": _path,
        "os_release": _path,
        "proc_dir": _root,
        "container_markers": _dir_list,
        "init_defaults": _dir_list,
        "run_dir": _path,
        "init_dir": _path,
    },
    "report": {"timeout": _seconds, "log_lines": _line_count},
}


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read, by the documented order; None when there is none."""
    if explicit is not None:
        return _named_file(explicit, "--config")
    if environ.get(ENV_VAR):
        return _named_file(environ[ENV_VAR], f"${ENV_VAR}")
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def _named_file(name: str, origin: str) -> Path:
    """The config file *origin* names: it must exist and be a regular file (not a
    directory, a FIFO that would block, or /dev/null)."""
    if not name:
        raise ConfigError(f"{origin} is empty: give the path of a TOML config file")
    plain = len(name) <= validate.SHOWN and name.isprintable()
    shown = name if plain else validate.shown(name)
    if "\x00" in name:
        raise ConfigError(f"{origin} {shown} has a NUL byte: give a file's path")
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"config file {shown} does not exist (given by {origin})"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {shown} (given by {origin}): {_reason(exc)}"
        ) from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError(
            f"config file {shown} (given by {origin}) is {kind}: give a TOML file"
        )
    return Path(name)


def load_config(
    explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    environ = os.environ if environ is None else environ
    default = DockerConfig()
    if environ.get("DOCKER_HOST"):
        default = DockerConfig(host=environ["DOCKER_HOST"], host_origin="DOCKER_HOST")
    path = find_config_file(explicit, environ)
    if path is None:
        return Config(docker=default)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: "
                "is it the right file?"
            )
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_reason(exc)}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from exc
    except RecursionError:  # arrays or tables nested thousands deep
        raise ConfigError(
            f"{path}: TOML syntax error: values nested too deeply"
        ) from None
    values = _validate(raw, path, text)
    docker_values = values.get("docker", {})
    if "host" in docker_values:
        docker_values["host_origin"] = f"config file {path}"
    docker = replace(default, **docker_values)
    stack = StackConfig(**values.get("stack", {}))
    checks = ChecksConfig(**values.get("checks", {}))
    host = HostConfig(**values.get("host", {}))
    agent = AgentConfig(**values.get("agent", {}))
    fix = FixConfig(**values.get("fix", {}))
    report = ReportConfig(**values.get("report", {}))
    return Config(
        docker=docker,
        stack=stack,
        checks=checks,
        host=host,
        agent=agent,
        fix=fix,
        report=report,
        source=path,
    )


def _validate(raw: dict[str, Any], path: Path, text: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for section, body in raw.items():
        if section not in SCHEMA:
            known = ", ".join(f"[{s}]" for s in SCHEMA)
            raise ConfigError(
                f"{path}{_at(text, section, None)}: unknown section [{_cut(section)}]"
                f" (known: {known})"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: '{section}' must be a table: [{section}]")
        out[section] = {}
        for key, value in body.items():
            validator = SCHEMA[section].get(key)
            where = f"{path}{_at(text, section, key)}"
            if validator is None:
                known = ", ".join(SCHEMA[section])
                raise ConfigError(
                    f"{where}: unknown key '{section}.{_cut(key)}' "
                    f"(known in [{section}]: {known})"
                )
            try:
                out[section][key] = validator(value)
            except ValueError as exc:
                raise ConfigError(
                    f"{where}: '{section}.{key}' {exc}, got {_show(value)}"
                ) from None
    stack = out.get("stack", {})
    stack_name = stack.get("name", StackConfig.name)
    try:
        definition = load_stack(stack_name)
    except ConfigError as exc:
        raise ConfigError(f"{path}{_at(text, 'stack', 'name')}: {exc}") from None
    if "ports" in stack:
        stack["ports"] = _stack_ports(stack["ports"], definition.override_keys(), path)
    return out


def _stack_ports(
    raw: dict[str, Any], known: Mapping[str, object], path: Path
) -> dict[str, int]:
    ports = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{path}: unknown service 'stack.ports.{_cut(key)}' "
                f"(services with fixed ports: {', '.join(known)})"
            )
        try:
            ports[key] = _port(value)
        except ValueError as exc:
            raise ConfigError(
                f"{path}: 'stack.ports.{key}' {exc}, got {_show(value)}"
            ) from None
    return ports


def _at(text: str, section: str, key: str | None) -> str:
    """' line N' for where a section or key is written, best effort; '' if unknown."""
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1)
            if key is None and current == section:
                return f" line {number}"
            continue
        if (
            key is not None
            and current == section
            and re.match(rf"^\"?{re.escape(key)}\"?\s*=", stripped)
        ):
            return f" line {number}"
        dotted = rf"^\"?{re.escape(section)}\"?\.\"?{re.escape(key or '')}"
        if not current and re.match(dotted, stripped):
            return f" line {number}"
    return ""


def _show(value: Any) -> str:
    kind = type(value).__name__
    kinds = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    try:
        text = validate.shown(value)
    except RecursionError:  # a list nested deeper than repr() goes
        text = "(nested too deeply to show)"
    return f"{kinds.get(kind, kind)} {text}"


def _cut(name: str) -> str:
    """A name from the file, cut short enough for a one-line error, its control
    characters escaped (a section named "\\r" must not break the line)."""
    if not name.isprintable():
        name = repr(name)[1:-1]
    return (
        name if len(name) <= validate.SHOWN else f"{name[:40]}... ({len(name)} chars)"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)
