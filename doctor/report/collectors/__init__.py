"""The report's collectors, one function each, in the order the report shows them."""

from __future__ import annotations

from shipyard_doctor.report.collect import Collector
from shipyard_doctor.report.collectors import docker, network, system

COLLECTORS: tuple[Collector, ...] = (
    Collector("tool", "shipyard-doctor and its configuration", system.tool),
    Collector("system", "OS, kernel, distribution, init system", system.system),
    Collector("virtualization", "Virtualization", system.virtualization),
    Collector("docker", "Docker version and info", docker.version_info),
    Collector("containers", "The stack's containers", docker.containers),
    Collector("dockerd-config", "dockerd's configuration", docker.daemon_config),
    Collector("dockerd-log", "dockerd's recent log", docker.daemon_log),
    Collector("listeners", "Listeners on the stack's ports", network.listeners),
    Collector("network", "Interfaces, addresses, routes", network.interfaces),
    Collector("mounts", "Mounts of the library dirs", system.mounts),
    Collector("dhcp", "DHCP clients and leases", network.dhcp),
    Collector("nat", "The nat DOCKER chain", network.nat),
)
