"""How a stack stands on this daemon, and what `undeploy` removes.

A container belongs to the stack when it carries the stack's label, or -- a legacy
deployment made by the old scripts -- has no labels, the name of one of the stack's
containers and the stack's image. Nothing else is ever listed for removal.
"""

from __future__ import annotations

from typing import Any

from shipyard_doctor.deploy import labels, probes
from shipyard_doctor.deploy.daemon import Daemon, Found
from shipyard_doctor.deploy.plan import stack_containers
from shipyard_doctor.records import record
from shipyard_doctor.stacks import Stack


@record
class ServiceStatus:
    """One service of a stack on this daemon: its container, if any, and whether it
    answers its readiness probe."""

    service: str
    container: str
    optional: bool
    found: Found | None
    ready: bool | None  # None: not probed (not running, or not reachable from here)

    @property
    def state(self) -> str:
        return self.found.state if self.found else "missing"

    def to_dict(self) -> dict[str, Any]:
        f = self.found
        return {
            "service": self.service,
            "container": self.container,
            "state": self.state,
            "id": f.id[:12] if f else None,
            "image": f.image if f else None,
            "ports": [
                {"container": c, "protocol": p, "host_ip": ip, "host_port": h}
                for c, p, ip, h in (f.ports if f else ())
            ],
            "deploy_id": f.labels.get(labels.DEPLOY_ID) if f else None,
            "legacy": bool(f) and labels.STACK not in (f.labels if f else {}),
            "ready": self.ready,
        }


@record
class StackStatus:
    """How a stack stands on this daemon: each service, its network and volumes."""

    stack: str
    services: tuple[ServiceStatus, ...]
    network: str | None
    volumes: tuple[str, ...]

    @property
    def state(self) -> str:
        """deployed | partial | not deployed."""
        needed = [s for s in self.services if not s.optional]
        present = [s for s in self.services if s.found]
        if not present:
            return "not deployed"
        if all(s.state == "running" for s in needed) and all(
            s.state == "running" for s in present
        ):
            return "deployed"
        return "partial"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "stack": self.stack,
            "state": self.state,
            "network": self.network,
            "volumes": list(self.volumes),
            "services": [s.to_dict() for s in self.services],
        }


def stack_status(daemon: Daemon, stack: Stack, probe: bool = True) -> StackStatus:
    found = stack_containers(stack, daemon.containers())
    services = []
    for service in stack.services:
        c = found.get(service.name)
        ready = None
        if probe and c and c.state == "running" and daemon.local:
            address = daemon.address(c.id, stack.network)
            if address and service.ready.kind != "running":
                ready = probes.attempt(service.ready, address, service.ready.port)
        services.append(
            ServiceStatus(service.name, service.container, service.optional, c, ready)
        )
    network = next((n["Name"] for n in daemon.networks_labelled(stack.name)), None)
    return StackStatus(
        stack.name, tuple(services), network, tuple(daemon.volumes_labelled(stack.name))
    )


@record
class UndeployPlan:
    """What ``undeploy`` removes: the stack's containers and networks, and its volumes
    with ``--volumes``."""

    stack: str
    containers: tuple[Found, ...]
    networks: tuple[tuple[str, str], ...]  # id, name
    volumes: tuple[str, ...]  # removed only with --volumes
    remove_volumes: bool

    @property
    def empty(self) -> bool:
        return (
            not self.containers
            and not self.networks
            and not (self.remove_volumes and self.volumes)
        )


def plan_undeploy(daemon: Daemon, stack: Stack, volumes: bool) -> UndeployPlan:
    found = stack_containers(stack, daemon.containers())
    order = [s.name for s in reversed(stack.deploy_order())]
    containers = tuple(found[name] for name in order if name in found)
    nets = tuple((n["Id"], n["Name"]) for n in daemon.networks_labelled(stack.name))
    return UndeployPlan(
        stack.name,
        containers,
        nets,
        tuple(daemon.volumes_labelled(stack.name)),
        volumes,
    )


def apply_undeploy(daemon: Daemon, plan: UndeployPlan) -> tuple[str, ...]:
    removed = []
    for c in plan.containers:
        daemon.remove_container(c.id, volumes=plan.remove_volumes)
        removed.append(c.name)
    for net_id, name in plan.networks:
        with daemon.quiet():
            daemon.api.remove_network(net_id)
            removed.append(f"network {name}")
    if plan.remove_volumes:
        for volume in plan.volumes:
            with daemon.quiet():
                daemon.api.remove_volume(volume)
                removed.append(f"volume {volume}")
    return tuple(removed)
