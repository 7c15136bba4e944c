"""Steps that repair Docker's port mappings without killing what they repair.

Restarting dockerd recreates its iptables chains, but without live-restore it stops
every running container: the ports are "fixed" because nothing publishes them any
more (issue 8). A container's own restart recreates its port mappings (the DNAT
rules of the nat DOCKER chain) and keeps its id, so it is the least disruptive
remedy when only those rules are gone. :class:`VerifyMappings` then compares the
repaired thing before and after: every published port that was broken has its DNAT
rule again, and every container that was running still runs with the same id; if
not, the step fails and the engine rolls the fix back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shipyard_doctor.fixing import FixError, Step
from shipyard_doctor.host import iptables
from shipyard_doctor.host.dockerapi import make_client, parse_endpoint, probe
from shipyard_doctor.host.facts import Unavailable
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
    from shipyard_doctor.fixengine.journal import RunJournal
    from shipyard_doctor.host.gateway import Host

#: How long a restarted dockerd or container may take to bring its rules back.
SETTLE_SECONDS = 15.0


@record
class BrokenPort:
    """A port a running container publishes whose DNAT rule is missing."""

    container: str  # name
    host_port: int
    container_port: int
    protocol: str

    def describe(self) -> str:
        return f"{self.host_port}/{self.protocol} -> {self.container}"


def _wait_for_api(endpoint: str, timeout: float, min_api: str) -> bool:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        if probe(parse_endpoint(endpoint), timeout, min_api).ok:
            return True
        time.sleep(0.2)
    return False


@record
class RestartContainers(Step):
    """``docker restart`` of the named containers: their port mappings come back,
    their ids stay. Not reversible (and nothing to reverse)."""

    endpoint: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    timeout: float = 10.0
    min_api: str = "1.24"

    def describe(self) -> str:
        return (
            f"restart the container{'s' if len(self.names) > 1 else ''} "
            f"{', '.join(self.names)} (Docker recreates their port mappings; same "
            "containers, same ids)"
        )

    def apply(self, journal: RunJournal) -> None:
        if not _wait_for_api(self.endpoint, self.timeout, self.min_api):
            raise FixError(f"the Docker API at {self.endpoint} did not come back")
        client = make_client(parse_endpoint(self.endpoint), self.timeout + 30)
        try:
            for cid, name in zip(self.ids, self.names, strict=True):
                try:
                    client.restart(cid, timeout=int(self.timeout))
                except Exception as exc:  # the SDK's APIError, a timeout
                    raise FixError(f"docker restart {name} failed: {exc}") from exc
        finally:
            client.close()
        journal.record_command(
            ("docker", "restart", *self.names),
            None,
            "recreate their port mappings (a restart keeps the container)",
        )


@record
class VerifyMappings(Step):
    """Fails unless every broken port has its DNAT rule again and every container
    that was running still runs with the same id (the engine then rolls back)."""

    config: Config
    environ: tuple[tuple[str, str], ...]
    broken: tuple[BrokenPort, ...]
    running: tuple[tuple[str, str], ...]  # (id, name) of the running containers

    def describe(self) -> str:
        what = [f"{len(self.running)} running container(s) keep running (same ids)"]
        if self.broken:
            what.append(
                "DNAT rules back for " + ", ".join(b.describe() for b in self.broken)
            )
        return "verify: " + "; ".join(what)

    def _problems(self) -> list[str]:
        from shipyard_doctor.host.gateway import Host

        with Host(self.config, dict(self.environ)) as host:
            return self._problems_on(host)

    def _problems_on(self, host: Host) -> list[str]:
        containers = host.containers()
        if isinstance(containers, Unavailable):
            return [f"cannot list the containers: {containers.reason}"]
        alive = {c.id for c in containers if c.state == "running"}
        problems = [
            f"container {name} ({cid[:12]}) no longer runs"
            for cid, name in self.running
            if cid not in alive
        ]
        saved = iptables.saved_rules(host)
        if saved.ruleset is None:
            return [*problems, "could not read the iptables rules"]
        dnats = iptables.docker_dnats(saved.ruleset.table("nat"))
        mappings = iptables.container_mappings(host)
        for port in self.broken:
            current = [
                m
                for m in mappings
                if (m.container, m.host_port, m.container_port, m.protocol)
                == (port.container, port.host_port, port.container_port, port.protocol)
            ]
            if not current or not any(m.matches(d) for m in current for d in dnats):
                problems.append(f"published port {port.describe()} has no DNAT rule")
        return problems

    def apply(self, journal: RunJournal) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            problems = self._problems()
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if problems:
            raise FixError("not repaired: " + "; ".join(problems))
