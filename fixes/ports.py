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

import functools
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard_doctor.fixing import (
    Action,
    Fix,
    FixOptions,
    Plan,
    RunCommand,
    Step,
    WriteFile,
)

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.portstate import PortState
    from shipyard_doctor.model import Result

#: Processes never stopped to free a port: Docker itself and its port proxies.
DOCKER_PROCESSES = frozenset({"dockerd", "docker", "containerd", "docker-proxy"})


class PortsFix(Fix):
    id = "ports"
    title = "Move Shipyard to free ports, or free them"
    repairs = ("ports",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.fixengine.containers import remove_container
        from shipyard_doctor.host.portstate import PortsEvidence

        found = result.evidence
        if not isinstance(found, PortsEvidence):
            return Plan(self.id, "ports", f"nothing to do: {result.summary}")
        stack, ours, foreign = found.stack, found.ours, found.foreign
        steps: list[Step] = []
        parts: list[str] = []
        manual: list[str] = []
        if ours:
            mine = [
                c for c in host.containers() or () if c.name in stack.container_names
            ]
            held = ", ".join(str(p.want.port) for p in ours)
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
        moves: dict[str, tuple[PortState, int]] = {}
        stopping: set[object] = set()  # a process on two ports is stopped once
        for entry in foreign:
            port = entry.want.port
            if options.stop_conflicting and _stoppable(entry):
                steps += _stops(entry, host, stopping, options, notes)
                parts.append(f"stop what holds {port}: {_holders(entry)}")
                continue
            if options.stop_conflicting:
                parts.append(
                    f"what holds {port} is not stopped (Docker's own, or an "
                    "owner that is not visible): moving instead"
                )
            if entry.move_to and _free(entry.move_to, host):
                moves[entry.key] = (entry, entry.move_to)
            else:
                parts.append(f"no free port found to move {entry.want.service} to")
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
    from shipyard_doctor.config import DEFAULT_PATH, ENV_VAR

    return host.config.source or Path(host.environ.get(ENV_VAR) or DEFAULT_PATH)


def _move_in_config(
    moves: Mapping[str, tuple[PortState, int]], host: Host
) -> tuple[Step | None, str]:
    from shipyard_doctor.config import StackConfig
    from shipyard_doctor.fixengine.tomledit import TomlEditError, set_value

    path = config_path(host)
    said = "move " + ", ".join(
        f"{e.want.service} from {e.want.port} to {port}" for e, port in moves.values()
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


def _by_hand(moves: Mapping[str, tuple[PortState, int]]) -> str:
    pairs = ", ".join(f"{key} = {port}" for key, (_, port) in moves.items())
    return f"in the doctor's config: [stack.ports] {pairs}"


def _note(entry: PortState, port: int, ui_service: str) -> str:
    want = entry.want
    old, cport, name = want.port, want.container_port, want.container
    if want.service == ui_service:
        moved = f"the Shipyard UI moves from http://HOST:{old} to http://HOST:{port}"
    else:
        moved = f"{name} publishes {cport}/tcp on host port {port} instead of {old}"
    return f"{moved}; deploy {name} with -p {port}:{cport}"


def _free(port: int, host: Host) -> bool:
    """Verified again at planning: no listener, and both families can bind it."""
    from shipyard_doctor.host.sockets import Bind, try_bind

    if any(item.port == port for item in host.tcp_listeners()):
        return False
    families = (socket.AF_INET, socket.AF_INET6)
    return all(try_bind(f, port) is not Bind.IN_USE for f in families)


def _stoppable(entry: PortState) -> bool:
    return bool(entry.holders) and all(
        (h.process is not None and h.process.name not in DOCKER_PROCESSES)
        or (h.container is not None and not h.shipyard)
        for h in entry.holders
    )


def _holders(entry: PortState) -> str:
    """What holds a port, as the plan names it: processes with their pid and
    command line, containers with their id."""
    named = []
    for h in entry.holders:
        if h.process is not None:
            named.append(h.process.describe())
        elif h.container is not None:
            named.append(f"container {h.container.name} (id {h.container.id[:12]})")
    return ", ".join(named)


def _stops(
    entry: PortState,
    host: Host,
    seen: set[object],
    options: FixOptions,
    notes: list[str],
) -> list[Step]:
    """Steps that stop every holder of a port (all of them _stoppable) not
    already in ``seen``; an enabled service is said to come back at boot (and
    disabled too with --disable-stopped)."""
    from shipyard_doctor.fixengine.containers import stop_container
    from shipyard_doctor.host.processes import process_service, start_time, terminate

    steps: list[Step] = []
    where = f"it holds {entry.want.port}/tcp"
    for holder in entry.holders:
        if holder.container is not None:
            c = holder.container
            if c.id[:12] not in seen:
                seen.add(c.id[:12])
                steps.append(stop_container(host, c.name, c.image, c.id[:12], where))
            continue
        if holder.process is None or holder.process.pid in seen:
            continue
        seen.add(holder.process.pid)
        pid, started = holder.process.pid, start_time(holder.process.pid)
        command = holder.process.describe()
        service = process_service(pid, host.proc)
        gone = _gone(pid, started)
        if service and service != process_service(os.getpid(), host.proc):
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
                        f"so that {service} does not take {entry.want.port} again at "
                        "boot (--disable-stopped)",
                        inverse=("systemctl", "enable", service),
                    )
                )
            elif at_boot:
                notes.append(
                    f"{service} is enabled: it starts again at the next boot and "
                    f"takes {entry.want.port} again; keep it off with systemctl "
                    f"disable {service} (or run this fix with --disable-stopped)"
                )
        else:
            steps.append(
                Action(
                    f"send SIGTERM to {command}; {where}",
                    run=functools.partial(terminate, pid, started),
                    done_when=gone,
                )
            )
    return steps


def _gone(pid: int, started: float | None) -> Callable[[], bool]:
    """``done_when`` of a stop: that process (not a reused pid) has ended."""
    from shipyard_doctor.host.processes import running

    return lambda: not running(pid, started)
