"""nat-docker fix: let Docker put its own iptables rules back, never killing what
it repairs.

Only DNAT rules gone (a flushed DOCKER chain): the affected containers are restarted
(same containers, same ids), which recreates their port mappings. Chains, jumps or
MASQUERADE gone: dockerd is restarted through its manager, but only with
live-restore on or no container running; otherwise the plan says how (live-restore,
or stop them first). A last step verifies the repaired thing itself: every broken
port has its DNAT rule again and every running container still runs with the same
id (doctor/fixengine/portmaps.py), else the fix is rolled back.

Docker recreates its chains, DNAT and MASQUERADE rules when it starts (moby#16816,
#10218: "restarting docker recreate[s] the chains"); the doctor never writes
iptables rules of its own, which would go stale the next time Docker changes them.
IPv4 forwarding switched off is turned back on with sysctl (Docker does the same at
start; undo switches it off again). A bridge subnet that overlaps another network
has no automatic fix: moving it ("bip") renumbers every container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.fixing import Fix, FixOptions, Plan, RunCommand, Step

if TYPE_CHECKING:
    from shipyard_doctor.fixengine import portmaps
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.natrules import NatEvidence
    from shipyard_doctor.model import Result

FORWARD_ON = ("sysctl", "-w", "net.ipv4.ip_forward=1")
FORWARD_OFF = ("sysctl", "-w", "net.ipv4.ip_forward=0")


class NatDockerFix(Fix):
    id = "nat-docker"
    title = "Restore Docker's NAT rules by restarting Docker"
    repairs = ("nat-docker",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.fixengine import portmaps, restart
        from shipyard_doctor.host import daemonconf, iptables, manager
        from shipyard_doctor.host.facts import Unavailable
        from shipyard_doctor.host.natrules import NatEvidence, NatProblem

        found = result.evidence
        if not isinstance(found, NatEvidence):
            return Plan(self.id, "nat-docker", "nothing to do: no NAT rules were read")
        forwarding_off = found.has(NatProblem.FORWARDING_OFF)
        rules = found.restart_repairs
        overlaps = found.state.overlaps
        manual = tuple(dict.fromkeys(o.move_bridge for o in overlaps))
        steps: list[Step] = []
        if forwarding_off:
            steps.append(
                RunCommand(
                    FORWARD_ON,
                    "published ports and container traffic need IPv4 forwarding",
                    inverse=FORWARD_OFF,
                    done_when=lambda: iptables.ip_forward(host.proc) is True,
                )
            )
        # Only DNAT rules gone (the DOCKER chain and its jumps still there): the
        # affected containers' own restarts bring them back; dockerd restarts only
        # for its chains, jumps and MASQUERADE (issue 8: never kill what is fixed).
        # With live-restore a dockerd restart touches no container at all: then it
        # is the gentler way for lost DNAT rules too.
        daemon_rules = any(
            p.kind.restart_repairs and p.kind is not NatProblem.NO_DNAT
            for p in found.problems
        )
        broken = _broken_ports(found)
        listed = host.containers()
        running = [
            c
            for c in (() if isinstance(listed, Unavailable) else listed)
            if c.state == "running"
        ]
        setup = manager.managed_setup(host) or daemonconf.running_setup(host)
        how = restart.dockerd_restart(host)
        live = restart.live_restore(setup) and how.possible
        risk = ""
        if daemon_rules or (broken and live):
            if not how.possible:
                return Plan(
                    self.id,
                    "nat-docker",
                    "not applied: Docker recreates its rules only when it starts, "
                    f"and the doctor has no way to restart it here ({how.how})",
                    manual=(
                        *([" ".join(FORWARD_ON)] if forwarding_off else []),
                        restart.BY_HAND,
                        *manual,
                    ),
                )
            if running and not restart.live_restore(setup):
                names = " ".join(sorted(c.name for c in running))
                path = setup.daemon_json.path if setup else "daemon.json"
                return Plan(
                    self.id,
                    "nat-docker",
                    "not applied: Docker recreates its chains only when it starts, "
                    "and without live-restore a restart stops the running "
                    f"containers ({names})",
                    manual=(
                        f'add "live-restore": true to {path} and reload Docker '
                        "(systemctl reload docker, or kill -HUP the dockerd pid), "
                        "then run this fix again: the containers keep running",
                        f"or, if they may stop: docker stop {names}, then run this "
                        "fix again",
                        *manual,
                    ),
                )
            why = f"Docker recreates its chains and rules at start ({how.how})"
            steps += [RunCommand(argv, why) for argv in how.commands]
            risk = restart.restart_risk(host, setup)
        elif broken:
            by_name = {c.name: c.id for c in running}
            affected = tuple(
                sorted({b.container for b in broken if b.container in by_name})
            )
            steps.append(
                portmaps.RestartContainers(
                    host.docker().endpoint.url,
                    tuple(by_name[n] for n in affected),
                    affected,
                    min_api=host.config.docker.min_api_version,
                )
            )
            risk = " ".join(
                filter(
                    None,
                    [
                        risk,
                        f"restarts {', '.join(affected)}: each is down for a moment "
                        "(same container, same id)",
                    ],
                )
            )
        if rules:
            steps.append(
                portmaps.VerifyMappings(
                    host.config,
                    tuple(host.environ.items()),
                    broken,
                    tuple((c.id, c.name) for c in running),
                )
            )
        if not steps:
            return Plan(
                self.id,
                "nat-docker",
                "no automatic fix: the Docker bridge overlaps another network; move "
                'it with "bip" in daemon.json (this renumbers every container), '
                "or renumber the other network"
                if overlaps
                else "nothing to do: Docker's rules are in place",
                manual=manual,
            )
        fixes = " and ".join(
            part
            for part, wanted in (
                ("turn IPv4 forwarding on", forwarding_off),
                (
                    "restart Docker so it recreates its iptables rules",
                    bool(daemon_rules or (broken and live)),
                ),
                (
                    "restart the containers whose port mappings are gone",
                    bool(broken and not (daemon_rules or live)),
                ),
            )
            if wanted
        )
        left = " (the bridge overlap needs the manual step below)" if overlaps else ""
        return Plan(
            self.id,
            "nat-docker",
            f"{fixes}{left}",
            steps=tuple(steps),
            risk=risk,
            notes=(
                "the doctor writes no iptables rules itself: only Docker's own, "
                "recreated at its start, stay right when Docker changes them later",
            ),
            manual=manual,
        )


def _broken_ports(found: NatEvidence) -> tuple[portmaps.BrokenPort, ...]:
    """The published ports the check found without their DNAT rule."""
    from shipyard_doctor.fixengine import portmaps

    return tuple(
        portmaps.BrokenPort(
            p.mapping.container,
            p.mapping.host_port,
            p.mapping.container_port,
            p.mapping.protocol,
        )
        for p in found.state.published
        if p.dnat is None
    )
