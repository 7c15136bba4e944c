"""nat-docker fix: let Docker put its own iptables rules back by restarting it.

Docker recreates its chains, DNAT and MASQUERADE rules when it starts (moby#16816,
#10218: "restarting docker recreate[s] the chains"); the doctor never writes
iptables rules of its own, which would go stale the next time Docker changes them.
IPv4 forwarding switched off is turned back on with sysctl (Docker does the same at
start; undo switches it off again). A bridge subnet that overlaps another network
has no automatic fix: moving it ("bip") renumbers every container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.fixengine import restart
from shipyard_doctor.fixing import Fix, FixOptions, Plan, RunCommand, Step
from shipyard_doctor.host import daemonconf, iptables
from shipyard_doctor.host.natrules import NatEvidence, NatProblem

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result

FORWARD_ON = ("sysctl", "-w", "net.ipv4.ip_forward=1")
FORWARD_OFF = ("sysctl", "-w", "net.ipv4.ip_forward=0")


class NatDockerFix(Fix):
    id = "nat-docker"
    title = "Restore Docker's NAT rules by restarting Docker"
    repairs = ("nat-docker",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
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
        how = restart.dockerd_restart(host)
        risk = ""
        if rules and not how.possible:
            return Plan(
                self.id,
                "nat-docker",
                "not applied: Docker recreates its rules only when it starts, and "
                f"the doctor has no way to restart it here ({how.how})",
                manual=(
                    *([" ".join(FORWARD_ON)] if forwarding_off else []),
                    restart.BY_HAND,
                    *manual,
                ),
            )
        if rules:
            why = f"Docker recreates its chains and rules at start ({how.how})"
            steps += [RunCommand(argv, why) for argv in how.commands]
            risk = restart.restart_risk(host, daemonconf.running_setup(host))
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
                ("restart Docker so it recreates its iptables rules", bool(rules)),
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
