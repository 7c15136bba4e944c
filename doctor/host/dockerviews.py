"""The docker-state evidence: where each client points, which data-roots hold
containers, and what is left of the stack, gathered from :mod:`.dockerstate`.

The check docker-state words the verdict; the fix docker-state reads
:class:`DockerStateEvidence` by its fields (the leftovers to remove, the clients to
point back).
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host.dockerstate import (
    ClientEndpoint,
    Daemon,
    client_endpoints,
    count_containers,
    daemon_info,
    daemons_here,
    running_daemons,
    same_endpoint,
    stack_state,
    system_data_root,
)
from shipyard_doctor.host.facts import Unavailable
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Container, Host
    from shipyard_doctor.model import Problem
    from shipyard_doctor.stacks import Stack


class StateProblem(StrEnum):
    DAEMONS = "daemons"  # more than one dockerd in this network namespace
    CLIENT_ELSEWHERE = "client-elsewhere"  # DOCKER_HOST / context at another daemon
    DATA_ROOT = "data-root"  # an empty data-root while another holds containers
    HALF_DEPLOYED = "half-deployed"
    UI_UNPUBLISHED = "ui-unpublished"
    UI_PORT = "ui-port"  # the UI on another host port than its fixed one

    @property
    def warns(self) -> bool:
        """A warning rather than a failure: the stack may still work."""
        return self in (
            StateProblem.DAEMONS,
            StateProblem.CLIENT_ELSEWHERE,
            StateProblem.DATA_ROOT,
        )


@record
class ClientView:
    """Where one docker CLI setting points, compared with the daemon checked."""

    endpoint: ClientEndpoint
    checked: bool  # the very endpoint checked
    same_daemon: bool  # another endpoint of the daemon checked (same /info ID)
    answers: bool  # a daemon answers there

    @property
    def kind(self) -> str:
        return "DOCKER_HOST" if self.endpoint.source == "DOCKER_HOST" else "context"

    @property
    def elsewhere(self) -> bool:
        return not (self.checked or self.same_daemon)


def describe_daemons(daemons: tuple[Daemon, ...]) -> list[str]:
    """The dockerds of other network namespaces, and the one of this namespace when
    there is only one."""
    lines = [
        f"{d.describe()} (another network namespace: a container or rootless Docker, "
        "not counted)"
        for d in daemons
        if d.same_netns is False
    ]
    here = daemons_here(daemons)
    return lines + ([here[0].describe()] if len(here) == 1 else [])


def describe_clients(views: tuple[ClientView, ...], mine: object) -> list[str]:
    """The clients that point at the daemon checked (``mine``: its /info ID)."""
    return [
        f"{v.endpoint.source}: {v.endpoint.url}, "
        + ("the daemon checked" if v.checked else f"the same daemon (ID {mine})")
        for v in views
        if not v.elsewhere
    ]


def client_views(host: Host, url: str) -> tuple[ClientView, ...]:
    mine = (daemon_info(host) or {}).get("ID")
    views = []
    for client in client_endpoints(host.environ):
        if same_endpoint(client.url, url):
            views.append(ClientView(client, True, False, True))
            continue
        other = (daemon_info(host, client.url) or {}).get("ID")
        views.append(
            ClientView(client, False, bool(mine and other == mine), bool(other))
        )
    return tuple(views)


@record
class DataRoot:
    """A data-root besides the checked daemon's, and how many containers it holds."""

    path: str
    owner: str  # "dockerd pid N" or "the system default"
    containers: int | None  # None: may not be read


@record
class DataRoots:
    """The checked daemon's data-root and its container count, beside the other
    data-roots on this host."""

    root: str  # the checked daemon's
    containers: object  # its /info "Containers" ("?" when not said)
    others: tuple[DataRoot, ...]

    @property
    def stranded(self) -> tuple[DataRoot, ...]:
        """Other data-roots holding containers while the checked one holds none."""
        if self.containers != 0:
            return ()
        return tuple(o for o in self.others if o.containers)

    def describe(self, url: str) -> list[str]:
        lines = [f"{url}: data-root {self.root}, {self.containers} containers"]
        for o in self.others:
            if o.containers is None:
                lines.append(f"{o.path} ({o.owner}): cannot read (run as root)")
            elif o not in self.stranded:
                lines.append(f"{o.path} ({o.owner}): {o.containers} containers")
        return lines


def data_roots(host: Host) -> DataRoots | None:
    """The checked daemon's data-root and every other one here; None when the
    daemon does not say where its own is."""
    info = daemon_info(host) or {}
    root = str(info.get("DockerRootDir", ""))
    if not root:
        return None
    owners = {
        d.data_root: f"dockerd pid {d.pid}"
        for d in running_daemons(host)
        if d.same_netns is not False
    }
    owners.setdefault(system_data_root(host), "the system default")
    others = tuple(
        DataRoot(path, owner, count_containers(path))
        for path, owner in sorted(owners.items())
        if os.path.realpath(path) != os.path.realpath(root)
    )
    return DataRoots(root, info.get("Containers", "?"), others)


@record
class DockerSight:
    """What docker-state sees besides the stack: the dockerds, where each client
    points, the data-roots; gathered in that order."""

    url: str  # the endpoint checked
    daemons: tuple[Daemon, ...]
    clients: tuple[ClientView, ...]
    daemon_id: object  # the checked daemon's /info ID (None when not said)
    roots: DataRoots | None

    @property
    def here(self) -> list[Daemon]:
        return daemons_here(self.daemons)

    def evidence(
        self,
        stack: Stack,
        containers: tuple[Container, ...] | Unavailable,
        problems: tuple[Problem[StateProblem], ...],
    ) -> DockerStateEvidence:
        return DockerStateEvidence(
            self.url, self.daemons, self.clients, stack, containers, problems
        )


def sight(host: Host, url: str) -> DockerSight:
    daemons = running_daemons(host)
    clients = client_views(host, url)
    daemon_id = (daemon_info(host) or {}).get("ID")
    return DockerSight(url, daemons, clients, daemon_id, data_roots(host))


@record
class DockerStateEvidence:
    """The docker-state evidence: the daemons running, where each client points, the
    stack's containers and the problems found."""

    endpoint: str
    daemons: tuple[Daemon, ...]
    clients: tuple[ClientView, ...]
    stack: Stack
    containers: tuple[Container, ...] | Unavailable
    problems: tuple[Problem[StateProblem], ...]

    @property
    def half_deployed(self) -> bool:
        states = stack_state(self.stack, self.containers or ())
        return any(s.state != "missing" for s in states) and any(
            s.state != "running" for s in states
        )

    @property
    def stack_containers(self) -> tuple[Container, ...]:
        """The stack's containers that exist."""
        names = self.stack.container_names
        return tuple(c for c in self.containers or () if c.name in names)

    def to_data(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "daemons": [vars(d) for d in self.daemons],
            "clients": [
                {
                    "kind": c.kind,
                    "source": c.endpoint.source,
                    "url": c.endpoint.url,
                    "elsewhere": c.elsewhere,
                }
                for c in self.clients
            ],
            "stack": {
                "name": self.stack.name,
                "half_deployed": self.half_deployed,
                "containers": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "state": c.state,
                        "id": c.id[:12],
                    }
                    for c in self.stack_containers
                ],
            },
            "problems": [
                {"status": p.status.value, "line": p.text} for p in self.problems
            ],
        }
