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

from shipyard_doctor.fixing import Fix, FixOptions, Plan

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result


class DockerStateFix(Fix):
    id = "docker-state"
    title = "Remove a half-deployed stack's leftovers; point the docker CLI back"
    repairs = ("docker-state",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.fixengine.containers import remove_container
        from shipyard_doctor.host.dockerviews import DockerStateEvidence

        found = result.evidence
        if not isinstance(found, DockerStateEvidence):
            return Plan(self.id, "docker-state", f"nothing to do: {result.summary}")
        leftovers = found.stack_containers if found.half_deployed else ()
        steps = tuple(
            remove_container(host, c.name, c.image, c.state, c.id[:12])
            for c in leftovers
        )
        elsewhere = [c.kind for c in found.clients if c.elsewhere]
        manual = point_back(elsewhere, found.endpoint, host)
        parts = []
        if steps:
            names = ", ".join(c.name for c in leftovers)
            parts.append(
                f"remove the leftovers of the half-deployed Shipyard {found.stack.name}"
                f" ({names}), then deploy again"
            )
        if manual:
            parts.append(
                f"point the docker CLI back at {found.endpoint}: run the commands "
                "below in the shell that runs docker and the deploy"
            )
        if not parts:
            first = found.problems[0].text if found.problems else result.summary
            parts.append(
                f"nothing this fix can change: {first} (see the check's hints)"
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


def client_commands(
    clients: Sequence[Mapping[str, Any]], endpoint: str, host: Host
) -> list[str]:
    """:func:`point_back` for the clients of a result's JSON data (a saved report)."""
    return point_back(
        [c["kind"] for c in clients if c.get("elsewhere")], endpoint, host
    )


def point_back(kinds: Sequence[str], endpoint: str, host: Host) -> list[str]:
    """The shell commands that point each misdirected client (its kind:
    DOCKER_HOST or context) at ``endpoint``."""
    from shipyard_doctor.config import DEFAULT_DOCKER_SOCKET
    from shipyard_doctor.host.dockerstate import same_endpoint

    default = same_endpoint(endpoint, DEFAULT_DOCKER_SOCKET)
    commands: list[str] = []
    for kind in kinds:
        if kind == "DOCKER_HOST":
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
    from shipyard_doctor.host.daemonconf import read_json_object
    from shipyard_doctor.host.dockerstate import same_endpoint

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
