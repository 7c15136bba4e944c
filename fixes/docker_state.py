"""docker-state fix: remove a half-deployed stack's leftovers; point the CLI back.

A failed deploy leaves named containers behind (created, exited, or running without
the rest of the stack) and every later deploy stops at "The container name
"/shipyard_redis" is already in use" (domain.md section 8.7). The fix shows each
leftover (name, image, state, id) and removes it through the Docker API, by id, so
a container created under that name since the check is never touched.

A docker CLI pointed at another daemon (DOCKER_HOST, the current docker context) is
not this host's state but the user's shell: the fix changes nothing and names the
command that points the client back at the daemon the doctor checked.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard_doctor.config import DEFAULT_DOCKER_SOCKET
from shipyard_doctor.fixing import Action, Fix, FixOptions, Plan
from shipyard_doctor.host.daemonconf import read_json_object
from shipyard_doctor.host.dockerapi import make_client
from shipyard_doctor.host.dockerstate import same_endpoint

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result

#: Seconds for a removal: a forced remove kills the container first.
REMOVE_TIMEOUT = 60.0


class DockerStateFix(Fix):
    id = "docker-state"
    title = "Remove a half-deployed stack's leftovers; point the docker CLI back"
    repairs = ("docker-state",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        data = result.data
        stack = data.get("stack") or {}
        leftovers = stack.get("containers", []) if stack.get("half_deployed") else []
        steps = tuple(
            remove_container(host, c["name"], c["image"], c["state"], c["id"])
            for c in leftovers
        )
        manual = client_commands(data.get("clients", []), data["endpoint"], host)
        parts = []
        if steps:
            names = ", ".join(c["name"] for c in leftovers)
            parts.append(
                f"remove the leftovers of the half-deployed Shipyard {stack['name']}"
                f" ({names}), then deploy again"
            )
        if manual:
            parts.append(
                f"point the docker CLI back at {data['endpoint']}: run the commands "
                "below in the shell that runs docker and the deploy"
            )
        if not parts:
            first = next(iter(data.get("problems", [])), {"line": result.summary})
            parts.append(
                f"nothing this fix can change: {first['line']} (see the check's hints)"
            )
        return Plan(
            self.id,
            "docker-state",
            "; ".join(parts),
            steps=steps,
            risk="each container is removed with what it wrote to its own filesystem"
            " (its volumes are kept); read a stopped one's log first: docker logs NAME"
            if steps
            else "",
            notes=("deploy Shipyard again afterwards",) if steps else (),
            manual=tuple(manual),
        )


def remove_container(
    host: Host, name: str, image: str, state: str, ident: str
) -> Action:
    """An Action removing one container by id (forced: a running one is killed),
    described with its name, image, state and id."""
    what = f"remove container {name} (image {image}, {state}, id {ident})"

    def run() -> None:
        client = make_client(host.docker().endpoint, REMOVE_TIMEOUT)
        try:
            client.remove_container(ident, force=True)
        finally:
            client.close()

    return Action(what, run=run, done_when=lambda: not _exists(host, ident))


def _exists(host: Host, ident: str) -> bool:
    import docker.errors

    client = make_client(host.docker().endpoint, host.docker_timeout)
    try:
        client.inspect_container(ident)
    except docker.errors.NotFound:
        return False
    except Exception:
        return True  # cannot tell: apply tries, and says why if it fails
    finally:
        client.close()
    return True


def client_commands(
    clients: Sequence[Mapping[str, Any]], endpoint: str, host: Host
) -> list[str]:
    """The shell commands that point each misdirected client at ``endpoint``."""
    default = same_endpoint(endpoint, DEFAULT_DOCKER_SOCKET)
    commands: list[str] = []
    for client in clients:
        if not client.get("elsewhere"):
            continue
        if client["kind"] == "DOCKER_HOST":
            commands.append(
                "unset DOCKER_HOST" if default else f"export DOCKER_HOST={endpoint}"
            )
            continue
        name = "default" if default else _context_for(endpoint, host.environ)
        if name is None:
            name = "shipyard-host"
            commands.append(f"docker context create {name} --docker host={endpoint}")
        if host.environ.get("DOCKER_CONTEXT"):  # it wins over `docker context use`
            commands.append(f"export DOCKER_CONTEXT={name}")
        else:
            commands.append(f"docker context use {name}")
    return list(dict.fromkeys(commands))


def _context_for(endpoint: str, environ: Mapping[str, str]) -> str | None:
    """The docker context whose endpoint is ``endpoint`` (the CLI keeps each in
    contexts/meta/<sha256 of its name>/meta.json), if the user has one."""
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(
        environ.get("HOME", "/"), ".docker"
    )
    pattern = os.path.join(config_dir, "contexts", "meta", "*", "meta.json")
    for path in sorted(glob.glob(pattern)):
        meta = read_json_object(path)
        url = (meta.get("Endpoints") or {}).get("docker", {}).get("Host")
        if isinstance(url, str) and same_endpoint(url, endpoint):
            return str(meta.get("Name", "")) or None
    return None
