"""docker-state: is this the Docker daemon, data and deployment the user thinks it is?

After a failed Shipyard install the 2014 user "ended up with a system that wouldn't
see any existing containers or images". The usual causes are all visible from here:
two dockerds at once, the docker CLI (DOCKER_HOST, the current docker context)
pointed at another daemon than the one checked, a daemon on an empty data-root while
another data-root holds the containers, a half-deployed stack whose leftovers block
the next deploy, and the UI published on a random host port (the July-2014 deploy
script's `-p :8000`). Each finding is one line with the real pids, paths and ports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from shipyard_doctor.host.dockerstate import (
    client_endpoints,
    count_containers,
    daemon_info,
    running_daemons,
    same_endpoint,
    stack_state,
    system_data_root,
    ui_ports,
)
from shipyard_doctor.host.gateway import Container, Host
from shipyard_doctor.model import Check, Result, Status


@dataclass
class Findings:
    problems: list[tuple[Status, str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def add(self, status: Status, line: str, *hints: str) -> None:
        self.problems.append((status, line))
        self.details.append(line)
        self.hints.extend(hints)


class DockerStateCheck(Check):
    id = "docker-state"
    title = "One Docker daemon, the one clients use, with the containers"
    category = "docker"
    requires = ("docker-daemon",)

    def run(self, host: Host) -> Result:
        found = Findings()
        url = host.docker().endpoint.url
        _daemons(host, found)
        clients = _clients(host, url, found)
        _data_roots(host, url, found)
        containers = host.containers()
        if containers is None:
            deployed = "containers not inspected: the Docker API failed"
            found.details.append(deployed)
        else:
            deployed = _stack(host, containers, found)
        data = {
            "endpoint": url,
            "daemons": [vars(d) for d in running_daemons(host)],
            "clients": clients,
            "stack": _stack_data(host, containers),
            "problems": [{"status": s.value, "line": t} for s, t in found.problems],
        }
        if not found.problems:
            return Result.ok(
                f"one Docker daemon ({url}), no client pointed elsewhere, {deployed}",
                details=found.details,
                data=data,
            )
        worst = (
            Status.FAILURE
            if any(s is Status.FAILURE for s, _ in found.problems)
            else Status.WARNING
        )
        lines = [t for s, t in found.problems if s is worst]
        more = len(found.problems) - 1
        summary = lines[0] + (f" (and {more} more)" if more else "")
        make = Result.failure if worst is Status.FAILURE else Result.warning
        return make(summary, details=found.details, hints=found.hints, data=data)


def _daemons(host: Host, found: Findings) -> None:
    daemons = running_daemons(host)
    here = [d for d in daemons if d.same_netns is not False]
    for d in daemons:
        if d.same_netns is False:
            found.details.append(
                f"{d.describe()} (another network namespace: a container or rootless"
                " Docker, not counted)"
            )
    if len(here) > 1:
        found.add(
            Status.WARNING,
            f"{len(here)} dockerd processes are running: "
            + "; ".join(d.describe() for d in here),
            "run one dockerd per host: stop the one you did not mean to start "
            "(systemctl stop docker, or kill PID of the extra one); two daemons fight"
            " over docker0, the iptables chains and the socket",
        )
    elif here:
        found.details.append(here[0].describe())


def _clients(host: Host, url: str, found: Findings) -> list[dict[str, object]]:
    """Where the docker CLI points; the ones at another daemon are findings."""
    mine = (daemon_info(host) or {}).get("ID")
    seen: list[dict[str, object]] = []
    for client in client_endpoints(host.environ):
        kind = "DOCKER_HOST" if client.source == "DOCKER_HOST" else "context"
        seen.append({"kind": kind, "source": client.source, "url": client.url})
        if same_endpoint(client.url, url):
            found.details.append(f"{client.source}: {client.url}, the daemon checked")
            seen[-1]["elsewhere"] = False
            continue
        other = (daemon_info(host, client.url) or {}).get("ID")
        seen[-1]["elsewhere"] = not (mine and other == mine)
        if mine and other == mine:
            found.details.append(
                f"{client.source}: {client.url}, the same daemon (ID {mine})"
            )
            continue
        state = "another daemon" if other else "an endpoint that does not answer"
        found.add(
            Status.WARNING,
            f"{client.source} points the docker CLI at {client.url}, {state}, not at"
            f" {url} (checked here)",
            f"docker and the deploy talk to {client.url}: unset DOCKER_HOST / run "
            f"'docker context use default', or check that one: shipyard-doctor check"
            f" --docker-host {client.url}",
        )
    return seen


def _data_roots(host: Host, url: str, found: Findings) -> None:
    info = daemon_info(host) or {}
    root = str(info.get("DockerRootDir", ""))
    if not root:
        return
    found.details.append(
        f"{url}: data-root {root}, {info.get('Containers', '?')} containers"
    )
    others = {
        d.data_root: f"dockerd pid {d.pid}"
        for d in running_daemons(host)
        if d.same_netns is not False
    }
    others.setdefault(system_data_root(host), "the system default")
    for path, owner in sorted(others.items()):
        if os.path.realpath(path) == os.path.realpath(root):
            continue
        count = count_containers(path)
        if count is None:
            found.details.append(f"{path} ({owner}): cannot read (run as root)")
        elif count and info.get("Containers") == 0:
            found.add(
                Status.WARNING,
                f"data-root {root} of {url} holds no containers while {path} "
                f"({owner}) holds {count}",
                f"Docker only sees the containers of its own data-root: set "
                f'"data-root": "{path}" in the daemon.json dockerd reads (or '
                f"--data-root) and restart it, or point the doctor and the CLI at the"
                f" daemon using {path}",
            )
        else:
            found.details.append(f"{path} ({owner}): {count} containers")


def _stack_data(
    host: Host, containers: tuple[Container, ...] | None
) -> dict[str, object]:
    """The stack's containers that exist, for the fix that removes leftovers."""
    stack = host.stack()
    names = stack.container_names
    states = stack_state(stack, containers or ())
    return {
        "name": stack.name,
        "half_deployed": any(s.state != "missing" for s in states)
        and any(s.state != "running" for s in states),
        "containers": [
            {"name": c.name, "image": c.image, "state": c.state, "id": c.id[:12]}
            for c in containers or ()
            if c.name in names
        ],
    }


def _stack(host: Host, containers: tuple[Container, ...], found: Findings) -> str:
    """Half-deployed stack and UI port findings; returns how the stack stands."""
    stack = host.stack()
    states = stack_state(stack, containers)
    present = [s for s in states if s.state != "missing"]
    name = f"Shipyard {stack.name}"
    if not present:
        found.details.append(f"stack: {name} is not deployed")
        return f"{name} is not deployed"
    stopped = [s.container for s in present if s.state != "running"]
    missing = [s.container for s in states if s.state == "missing"]
    if stopped or missing:
        running = [s.container for s in present if s.state == "running"]
        parts = [f"{', '.join(running)} running"] if running else []
        parts += [f"{s.container} {s.state}" for s in present if s.state != "running"]
        parts += [f"{', '.join(missing)} missing"] if missing else []
        found.add(
            Status.FAILURE,
            f"{name} is half-deployed: " + "; ".join(parts),
            *[f"see why {c} stopped: docker logs {c}" for c in stopped],
            "remove the leftovers and deploy again: docker rm -f "
            + " ".join(s.container for s in present),
        )
        return f"{name} is half-deployed"
    ui = ui_ports(stack, containers, host.config.stack.ports)
    if ui is None or ui.fixed in {port for _, port in ui.published}:
        found.details.append(f"stack: {name} is deployed, all containers running")
        return f"{name} is deployed"
    want, published = ui.fixed, ui.published
    cport = f"{stack.ui_container_port}/tcp"
    if not published:
        found.add(
            Status.FAILURE,
            f"{ui.container} does not publish {cport}: the UI cannot be reached",
            f"recreate it: docker rm -f {ui.container}, then deploy again "
            f"(-p {want}:{stack.ui_container_port})",
        )
        return f"{name} is deployed"
    ip, port = sorted(published)[0]
    where = ip if ip not in ("", "0.0.0.0", "::") else "HOST"
    found.add(
        Status.FAILURE,
        f"{ui.container} publishes {cport} on host port {port}, not {want}: the UI is"
        f" at http://{where}:{port}",
        f"recreate it on its fixed port: docker rm -f {ui.container}, then deploy "
        f"again with -p {want}:{stack.ui_container_port} (the July-2014 deploy script's"
        " '-p :8000' lets Docker pick a random host port)",
    )
    return f"{name} is deployed"
