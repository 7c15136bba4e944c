"""Before a deploy: run the checks that matter for it and decide what blocks.

The checks run through the same registry and runner as `check`, on a configuration
whose stack is the one being deployed (so `ports` checks the effective host ports).
A problem that concerns only a part not being deployed does not block: the agent's
API version without --with-agent, schema 1 pulls when no such image is pulled, a
half-deployed stack (which the deploy repairs).
"""

from __future__ import annotations

from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import CheckRun, Status
from shipyard_doctor.records import record
from shipyard_doctor.stacks import Stack

CHECKS = ("docker-daemon", "docker-state", "ports", "nat-docker", "docker-compat")


@record
class Blocker:
    """A check's problem that stops a deploy (unless ``--force``), with its fixes."""

    check: str
    summary: str
    fixes: tuple[str, ...]
    hints: tuple[str, ...]


@record
class Preflight:
    """The checks run before a deploy, and the problems among them that block it."""

    runs: tuple[CheckRun, ...]
    blockers: tuple[Blocker, ...]
    forced: bool  # --force: the blockers were overridden

    @property
    def blocked(self) -> bool:
        return bool(self.blockers) and not self.forced


def run_preflight(
    host: Host,
    stack: Stack,
    services: frozenset[str],
    pulls: tuple[str, ...],
    force: bool,
) -> Preflight:
    from shipyard_doctor.registry import discover
    from shipyard_doctor.runner import Selection, order_checks, run_checks

    registry = discover()
    wanted = [c for c in CHECKS if c in registry.checks]
    selection = Selection(order_checks(registry, wanted), {}, frozenset())
    runs = tuple(run_checks(registry, selection, host, host.config.checks.timeout))
    blockers = tuple(
        Blocker(r.id, r.result.summary, r.result.fixes, r.result.hints)
        for r in runs
        if r.result.status.is_problem and _blocks(r, stack, services, pulls)
    )
    return Preflight(runs, blockers, force and bool(blockers))


def _blocks(
    run: CheckRun, stack: Stack, services: frozenset[str], pulls: tuple[str, ...]
) -> bool:
    data = run.result.data
    if run.result.status is Status.ERROR:
        return True
    if run.id == "docker-state":
        # The stack being half-deployed is what the deploy repairs; anything else
        # (two daemons, a client pointed elsewhere) blocks.
        problems = [p for p in data.get("problems", ()) if p.get("status") == "failure"]
        half = bool((data.get("stack") or {}).get("half_deployed"))
        return len(problems) > (1 if half else 0)
    if run.id == "docker-compat":
        deployed = {
            c.name for c in stack.clients if not c.service or c.service in services
        }
        refused = [
            c
            for c in data.get("clients", ())
            if c.get("name") in deployed and c.get("status") not in (200, None)
        ]
        schema1 = {s.image for s in stack.services if s.manifest == "schema1"} & {
            p.rsplit(":", 1)[0] for p in pulls
        }
        removed = data.get("schema1_pull") == "removed" and bool(schema1)
        return bool(refused) or removed
    return True
