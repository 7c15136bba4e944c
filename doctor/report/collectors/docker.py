"""Collectors that ask the Docker API and read dockerd's configuration and log.

They call the API with ``[docker] timeout`` per request and no probe first: a daemon
that accepts and never answers makes the collector run into its own timeout, and the
report says so, instead of waiting for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard_doctor.report.collect import (
    CollectContext,
    Found,
    SectionStatus,
    read_text,
    tail,
)

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

STATE_KEYS = (
    "Status",
    "Running",
    "Restarting",
    "OOMKilled",
    "ExitCode",
    "Error",
    "StartedAt",
    "FinishedAt",
)


def _client(host: Host) -> Any:
    from shipyard_doctor.host.dockerapi import make_client, parse_endpoint

    cfg = host.config.docker
    return make_client(parse_endpoint(cfg.host), cfg.timeout)


def _unreachable(found: Found, host: Host, exc: Exception) -> Found:
    text = str(exc) or type(exc).__name__
    found.summary = f"the Docker API at {host.config.docker.host} did not answer"
    found.cannot_read(f"Docker API {host.config.docker.host}", text[:300])
    found.status = SectionStatus.SKIPPED
    return found


def version_info(host: Host, context: CollectContext) -> Found:
    found = Found()
    try:
        client = _client(host)
        try:
            version = client.version(api_version=False)
            info = client.info()
        finally:
            client.close()
    except Exception as exc:  # the SDK raises many kinds; all mean "no answer"
        return _unreachable(found, host, exc)
    warnings = list(info.get("Warnings") or ())
    found.summary = (
        f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')}), "
        f"{info.get('Containers', '?')} containers, {len(warnings)} warnings"
    )
    keep = (
        "ServerVersion",
        "Driver",
        "DockerRootDir",
        "CgroupDriver",
        "CgroupVersion",
        "LoggingDriver",
        "SecurityOptions",
        "Runtimes",
        "DefaultRuntime",
        "KernelVersion",
        "OperatingSystem",
        "OSType",
        "Architecture",
        "NCPU",
        "MemTotal",
        "Name",
        "HttpProxy",
        "HttpsProxy",
        "NoProxy",
        "Labels",
        "LiveRestoreEnabled",
        "Containers",
        "ContainersRunning",
        "ContainersStopped",
        "Images",
        "IndexServerAddress",
        "RegistryConfig",
        "Swarm",
    )
    found.data = {
        "version": version,
        "info": {k: info[k] for k in keep if k in info},
        "warnings": warnings,
    }
    lines = [
        f"Server: Docker {version.get('Version')} API {version.get('ApiVersion')} "
        f"(min API {version.get('MinAPIVersion')}), Go {version.get('GoVersion')}, "
        f"{version.get('Os')}/{version.get('Arch')}",
    ]
    lines += [f"{k}: {_short(found.data['info'][k])}" for k in found.data["info"]]
    lines += ["", "Warnings:" if warnings else "Warnings: none"]
    lines += [f"  {w}" for w in warnings]
    found.text = "\n".join(lines)
    found.files["docker-version.json"] = json.dumps(version, indent=2)
    found.files["docker-info.json"] = json.dumps(info, indent=2, default=str)
    return found


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def is_stack_container(
    name: str, labels: Mapping[str, str], known: Mapping[str, str]
) -> str | None:
    """The stack a container belongs to: by the stacks' container names, or by a
    ``stack``/``service`` label (``deploy`` labels what it creates); else None.
    Only these exact keys: Compose's ``com.docker.compose.service`` is not ours."""
    if name in known:
        return known[name]
    labels = labels or {}
    if "stack" in labels:
        return labels["stack"] or "?"
    return "?" if "service" in labels else None


def containers(host: Host, context: CollectContext) -> Found:
    found = Found()
    try:
        client = _client(host)
    except Exception as exc:
        return _unreachable(found, host, exc)
    try:
        try:
            listed = client.containers(all=True)
        except Exception as exc:
            return _unreachable(found, host, exc)
        rows: list[dict[str, Any]] = []
        for raw in listed:
            names = [n.lstrip("/") for n in raw.get("Names") or ()]
            name = min(names, key=lambda n: n.count("/")) if names else raw["Id"][:12]
            stack = is_stack_container(
                name, raw.get("Labels") or {}, context.stack_containers
            )
            if stack is None:
                continue
            rows.append(_container(client, raw["Id"], name, stack, context, found))
    finally:
        client.close()
    others = len(listed) - len(rows)
    running = sum(1 for r in rows if r["state"].get("Running"))
    found.summary = (
        f"{len(rows)} stack containers ({running} running), {others} other containers"
        if rows
        else f"no container of a Shipyard stack ({others} other containers)"
    )
    found.data = {"containers": rows, "other_containers": others}
    found.text = "\n\n".join(_describe(r) for r in rows) or found.summary
    return found


def _container(
    client: Any,
    container_id: str,
    name: str,
    stack: str,
    context: CollectContext,
    found: Found,
) -> dict[str, Any]:
    inspect = client.inspect_container(container_id)
    state = inspect.get("State") or {}
    config = inspect.get("Config") or {}
    host_config = inspect.get("HostConfig") or {}
    ports = (inspect.get("NetworkSettings") or {}).get("Ports") or {}
    row: dict[str, Any] = {
        "name": name,
        "id": container_id[:12],
        "stack": stack,
        "image": config.get("Image", ""),
        "state": {k: state[k] for k in STATE_KEYS if k in state},
        "health": (state.get("Health") or {}).get("Status"),
        "restart_count": inspect.get("RestartCount", 0),
        "restart_policy": (host_config.get("RestartPolicy") or {}).get("Name", ""),
        "ports": {
            port: [
                f"{b.get('HostIp', '')}:{b.get('HostPort', '')}" for b in binds or ()
            ]
            for port, binds in ports.items()
        },
        "env": list(config.get("Env") or ()),
        "labels": dict(config.get("Labels") or {}),
        "command": [*(config.get("Entrypoint") or ()), *(config.get("Cmd") or ())],
    }
    found.files[f"containers/{name}.inspect.json"] = json.dumps(inspect, indent=2)
    if context.log_lines:
        try:
            raw = client.logs(container_id, tail=context.log_lines, timestamps=True)
            text = raw.decode(errors="replace")
            kept, dropped = tail(text, context.log_lines, context.log_bytes)
            row["log"] = kept
            row["log_cut"] = dropped
            found.files[f"containers/{name}.log"] = kept
        except Exception as exc:
            row["log"] = ""
            found.cannot_read(f"log of {name}", str(exc)[:200])
    return row


def _describe(row: dict[str, Any]) -> str:
    state = row["state"]
    ports = ", ".join(
        f"{p} -> {' '.join(b) or 'not published'}" for p, b in row["ports"].items()
    )
    lines = [
        f"{row['name']} ({row['id']}, image {row['image']}, stack {row['stack']}): "
        f"{state.get('Status', '?')}, exit code {state.get('ExitCode')}, "
        f"restarts {row['restart_count']} (policy {row['restart_policy'] or 'no'})",
        f"  started {state.get('StartedAt')}, finished {state.get('FinishedAt')}"
        + (f", error: {state['Error']}" if state.get("Error") else ""),
        f"  ports: {ports or 'none'}",
        f"  command: {' '.join(row['command'])}",
        "  env: " + " ".join(row["env"]),
    ]
    if row.get("log"):
        cut = (
            f", {row['log_cut']} earlier lines not shown" if row.get("log_cut") else ""
        )
        lines.append(f"  last log lines{cut}:")
        lines += [f"    {line}" for line in row["log"].splitlines()]
    elif "log" in row:
        lines.append("  log: empty")
    return "\n".join(lines)


def client_config_path(environ: Mapping[str, str]) -> str:
    """The docker CLI's config.json: $DOCKER_CONFIG, else ~/.docker (registry auths)."""
    base = environ.get("DOCKER_CONFIG") or os.path.join(
        environ.get("HOME", "/root"), ".docker"
    )
    return os.path.join(base, "config.json")


def daemon_config(host: Host, context: CollectContext) -> Found:
    from shipyard_doctor.host.gateway import in_own_netns
    from shipyard_doctor.host.systemd import docker_units

    found = Found()
    cfg = host.config
    files: list[tuple[str, str]] = [("daemon.json", cfg.docker.daemon_json)]
    processes = [
        p for p in host.dockerd_processes() if in_own_netns(p.pid) is not False
    ]
    for proc in processes:
        args = list(proc.cmdline)
        for i, arg in enumerate(args):
            value = arg.split("=", 1)[1] if arg.startswith("--config-file=") else None
            if arg == "--config-file" and i + 1 < len(args):
                value = args[i + 1]
            if value and value != cfg.docker.daemon_json:
                files.append((f"daemon-{proc.pid}.json", value))
    unit, sockets = docker_units(host)
    for item in (unit, *sockets):
        if item.fragment is not None:
            files.append((item.name, str(item.fragment)))
        for dropin in item.dropins:
            files.append((f"{item.name}.d/{dropin.name}", str(dropin)))
    for path in cfg.host.init_defaults:
        files.append((path.strip("/").replace("/", "-"), path))
    files.append(("client-config.json", client_config_path(host.environ)))
    lines = ["running dockerd in this network namespace:"]
    lines += [f"  {p.describe()}" for p in processes] or ["  none"]
    lines.append(f"docker.service: {unit.describe()}")
    read = []
    for name, path in files:
        text = read_text(path, found)
        if text is None:
            lines.append(
                f"{path}: not present" if not _exists(path) else f"{path}: unreadable"
            )
            continue
        read.append(path)
        found.files[name] = text
        lines += ["", f"--- {path}", text.rstrip()]
    found.summary = f"{len(processes)} dockerd running; read {len(read)} files"
    found.data = {
        "dockerd": [{"pid": p.pid, "cmdline": list(p.cmdline)} for p in processes],
        "files": {name: path for name, path in files if path in read},
        "unit": unit.describe(),
    }
    found.text = "\n".join(lines)
    return found


def _exists(path: str) -> bool:
    try:
        Path(path).stat()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def daemon_log(host: Host, context: CollectContext) -> Found:
    from shipyard_doctor.host.dockerlog import LOG_FILES
    from shipyard_doctor.host.systemd import DOCKER_SERVICE, systemd_running

    found = Found()
    lines = context.log_lines
    configured = host.config.docker.log_file
    candidates = [configured] if configured else []
    text: str | None = None
    source = ""
    if not configured and systemd_running():
        argv = ["journalctl", "-u", DOCKER_SERVICE, "-n", str(lines), "--no-pager"]
        done = host.run_command(argv, timeout=5)
        source = " ".join(argv[:3])
        if done.ok and done.stdout.strip() and "No entries" not in done.stdout:
            text = done.stdout
        else:
            why = done.describe() if not done.ok else "no entries"
            if not host.is_root:
                why += " (run as root, or in group systemd-journal, to read it)"
            found.cannot_read(source, why)
    elif not configured:
        candidates = list(LOG_FILES)
    for path in candidates:
        text = read_text(path, found, limit=4 * 1024 * 1024)
        if text is not None:
            source = path
            break
    if text is None:
        found.summary = "no dockerd log found"
        if not configured:
            found.cannot_read(
                "dockerd's log", "set [docker] log_file to where dockerd's output goes"
            )
        found.status = (
            SectionStatus.PARTIAL if found.unreadable else SectionStatus.SKIPPED
        )
        return found
    kept, dropped = tail(text, lines, context.log_bytes)
    found.summary = f"last {len(kept.splitlines())} lines of {source}"
    found.data = {
        "source": source,
        "lines": kept.splitlines(),
        "earlier_lines": dropped,
    }
    found.text = kept
    found.files["dockerd.log"] = kept
    return found
