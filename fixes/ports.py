"""ports fix: get Shipyard's host ports free, by default without touching anyone else.

The safe route (domain.md section 1.3) moves Shipyard, not the other program: the
taken port is replaced in the doctor's ``[stack.ports]`` by the free port the check
found (verified free again here), and the plan says which URL changes. A previous
deployment of the selected stack holding the ports is removed through the Docker API,
all its containers, since removing only the port holders would leave it
half-deployed. Stopping a foreign program happens only with ``--stop-conflicting``,
naming exactly what stops: ``systemctl stop`` for a process that a system service
runs (systemd would restart a killed one), else SIGTERM to that pid.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard_doctor.config import DEFAULT_PATH, ENV_VAR, StackConfig
from shipyard_doctor.fixengine.tomledit import TomlEditError, set_value
from shipyard_doctor.fixes.docker_state import REMOVE_TIMEOUT, remove_container
from shipyard_doctor.fixing import (
    Action,
    Fix,
    FixOptions,
    Plan,
    RunCommand,
    Step,
    WriteFile,
)
from shipyard_doctor.host.dockerapi import make_client
from shipyard_doctor.host.gateway import ProcessInfo
from shipyard_doctor.host.processes import (
    process_service,
    running,
    start_time,
    terminate,
)
from shipyard_doctor.host.sockets import Bind, try_bind

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result

#: Processes never stopped to free a port: Docker itself and its port proxies.
DOCKER_PROCESSES = frozenset({"dockerd", "docker", "containerd", "docker-proxy"})


class PortsFix(Fix):
    id = "ports"
    title = "Move Shipyard to free ports, or free them"
    repairs = ("ports",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        stack = host.stack()
        taken = [p for p in result.data.get("ports", []) if p["holders"]]
        ours = [p for p in taken if all(h.get("shipyard") for h in p["holders"])]
        foreign = [p for p in taken if p not in ours]
        steps: list[Step] = []
        parts: list[str] = []
        manual: list[str] = []
        if ours:
            mine = [
                c for c in host.containers() or () if c.name in stack.container_names
            ]
            held = ", ".join(str(p["port"]) for p in ours)
            names = " ".join(c.name for c in mine)
            if _running_stack(stack, mine):
                # A working deployment is not a leftover: never removed by --yes.
                parts.append(
                    f"Shipyard {stack.name} is deployed and running (it holds {held}):"
                    " a working deployment is not removed"
                )
                manual.append(f"docker rm -f {names}  # only to deploy it again")
            else:
                steps += [
                    remove_container(host, c.name, c.image, c.state, c.id[:12])
                    for c in mine
                ]
                parts.append(
                    f"remove the leftovers of the broken Shipyard {stack.name} "
                    f"deployment ({', '.join(c.name for c in mine)}), whose containers"
                    f" hold {held}"
                )
        notes: list[str] = []  # stopped services that come back at boot
        moves: dict[str, tuple[Mapping[str, Any], int]] = {}
        stopping: set[object] = set()  # a process on two ports is stopped once
        for entry in foreign:
            if options.stop_conflicting and _stoppable(entry):
                steps += _stops(entry, host, stopping, options, notes)
                parts.append(f"stop what holds {entry['port']}: {_holders(entry)}")
                continue
            if options.stop_conflicting:
                parts.append(
                    f"what holds {entry['port']} is not stopped (Docker's own, or an "
                    "owner that is not visible): moving instead"
                )
            if entry.get("move_to") and _free(entry["move_to"], host):
                moves[entry["key"]] = (entry, entry["move_to"])
            else:
                parts.append(f"no free port found to move {entry['service']} to")
        if moves:
            write, said = _move_in_config(moves, host)
            steps += [write] if write is not None else []
            manual += [] if write is not None else [_by_hand(moves)]
            parts.append(said)
        stoppable = [_holders(p) for p in foreign if _stoppable(p)]
        if stoppable and not options.stop_conflicting:
            parts.append(
                f"stopping {'; '.join(stoppable)} instead would need --stop-conflicting"
            )
        return Plan(
            self.id,
            "ports",
            "; ".join(parts) or result.summary,
            steps=tuple(steps),
            risk="removing the deployment's containers loses what they wrote to "
            "their own filesystems (volumes are kept); deploy again afterwards"
            if ours
            else "",
            notes=(
                *notes,
                *(_note(e, port, stack.ui_service) for e, port in moves.values()),
            ),
            manual=tuple(manual),
        )


def _running_stack(stack: Any, containers: list[Any]) -> bool:
    """Every service of the stack (but optional ones) has a running container."""
    state = {c.name: c.state for c in containers}
    return all(
        state.get(service.container) == "running"
        for service in stack.services
        if not service.optional
    )


def config_path(host: Host) -> Path:
    """The doctor's config file: the one read, else where it would be read from."""
    return host.config.source or Path(host.environ.get(ENV_VAR) or DEFAULT_PATH)


def _move_in_config(
    moves: Mapping[str, tuple[Mapping[str, Any], int]], host: Host
) -> tuple[Step | None, str]:
    path = config_path(host)
    said = "move " + ", ".join(
        f"{e['service']} from {e['port']} to {port}" for e, port in moves.values()
    )
    try:
        text = path.read_text() if path.exists() else ""
        named = tomllib.loads(text).get("stack", {}).get("name", StackConfig.name)
        if named != host.config.stack.name:
            raise TomlEditError(
                f"--stack {host.config.stack.name} ignores [stack.ports]; set [stack] "
                f'name = "{host.config.stack.name}" there and run without --stack'
            )
        for key, (_, port) in moves.items():
            text = set_value(text, ("stack", "ports"), key, port)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TomlEditError) as e:
        return None, f"{said}: cannot edit {path} ({e}); set it by hand"
    return WriteFile(str(path), text), f"{said} in {path}"


def _by_hand(moves: Mapping[str, tuple[Mapping[str, Any], int]]) -> str:
    pairs = ", ".join(f"{key} = {port}" for key, (_, port) in moves.items())
    return f"in the doctor's config: [stack.ports] {pairs}"


def _note(entry: Mapping[str, Any], port: int, ui_service: str) -> str:
    old, cport, name = entry["port"], entry["container_port"], entry["container"]
    if entry["service"] == ui_service:
        moved = f"the Shipyard UI moves from http://HOST:{old} to http://HOST:{port}"
    else:
        moved = f"{name} publishes {cport}/tcp on host port {port} instead of {old}"
    return f"{moved}; deploy {name} with -p {port}:{cport}"


def _free(port: int, host: Host) -> bool:
    """Verified again at planning: no listener, and both families can bind it."""
    if any(item.port == port for item in host.tcp_listeners()):
        return False
    families = (socket.AF_INET, socket.AF_INET6)
    return all(try_bind(f, port) is not Bind.IN_USE for f in families)


def _stoppable(entry: Mapping[str, Any]) -> bool:
    return bool(entry["holders"]) and all(
        (h["kind"] == "process" and h["name"] not in DOCKER_PROCESSES)
        or (h["kind"] == "container" and not h.get("shipyard"))
        for h in entry["holders"]
    )


def _holders(entry: Mapping[str, Any]) -> str:
    """What holds a port, as the plan names it: processes with their pid and
    command line, containers with their id."""
    named = []
    for h in entry["holders"]:
        if h["kind"] == "process":
            named.append(_process(h))
        elif h["kind"] == "container":
            named.append(f"container {h['name']} (id {h['id']})")
    return ", ".join(named)


def _process(holder: Mapping[str, Any]) -> str:
    """'name (pid N, user U): command line', as the check names it."""
    info = ProcessInfo(
        holder["pid"], holder["name"], tuple(holder["cmdline"]), holder.get("user")
    )
    return info.describe()


def _stops(
    entry: Mapping[str, Any],
    host: Host,
    seen: set[object],
    options: FixOptions,
    notes: list[str],
) -> list[Step]:
    """Steps that stop every holder of a port (all of them _stoppable) not
    already in ``seen``; an enabled service is said to come back at boot (and
    disabled too with --disable-stopped)."""
    steps: list[Step] = []
    for holder in entry["holders"]:
        who = holder.get("pid") or holder.get("id")
        if who in seen:
            continue
        seen.add(who)
        where = f"it holds {entry['port']}/tcp"
        if holder["kind"] == "container":
            steps.append(_stop_container(host, holder, where))
            continue
        pid, started = holder["pid"], start_time(holder["pid"])
        command = _process(holder)
        service = process_service(pid)
        gone = lambda pid=pid, started=started: not running(pid, started)  # noqa: E731
        if service and service != process_service(os.getpid()):
            enabled = host.run_command(["systemctl", "is-enabled", service])
            at_boot = enabled.stdout.strip() in ("enabled", "enabled-runtime")
            steps.append(
                RunCommand(
                    ("systemctl", "stop", service),
                    f"{service} runs {command}; {where}"
                    + ("; it is enabled: it starts again at boot" if at_boot else ""),
                    inverse=("systemctl", "start", service),
                    done_when=gone,
                )
            )
            if at_boot and options.disable_stopped:
                steps.append(
                    RunCommand(
                        ("systemctl", "disable", service),
                        f"so that {service} does not take {entry['port']} again at "
                        "boot (--disable-stopped)",
                        inverse=("systemctl", "enable", service),
                    )
                )
            elif at_boot:
                notes.append(
                    f"{service} is enabled: it starts again at the next boot and "
                    f"takes {entry['port']} again; keep it off with systemctl "
                    f"disable {service} (or run this fix with --disable-stopped)"
                )
        else:
            steps.append(
                Action(
                    f"send SIGTERM to {command}; {where}",
                    run=lambda pid=pid, started=started: terminate(pid, started),
                    done_when=gone,
                )
            )
    return steps


def _stop_container(host: Host, holder: Mapping[str, Any], where: str) -> Action:
    ident = holder["id"]

    def run() -> None:
        client = make_client(host.docker().endpoint, REMOVE_TIMEOUT)
        try:
            client.stop(ident, timeout=10)
        finally:
            client.close()

    def stopped() -> bool:
        client = make_client(host.docker().endpoint, host.docker_timeout)
        try:
            return not client.inspect_container(ident)["State"]["Running"]
        except Exception:
            return False
        finally:
            client.close()

    return Action(
        f"stop container {holder['name']} (image {holder['image']}, id {ident}); "
        f"{where} (docker start {holder['name']} brings it back)",
        run=run,
        done_when=stopped,
    )
