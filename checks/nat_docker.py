"""nat-docker: are the iptables rules Docker needs for published ports still there?

The 2014 user "disabled iptables" on a Docker host. Flushing the rules (``iptables
-F``, ``iptables -t nat -F``, restarting a firewall service) removes Docker's DNAT and
MASQUERADE rules: published ports stop answering and containers lose the network;
once the DOCKER chain itself is deleted, Docker's next publish fails with "iptables:
No chain/target/match by that name". IPv4 forwarding switched off, a FORWARD chain that
drops before Docker's jumps, and a Docker bridge whose subnet overlaps another
network of the host (coreos-vagrant's 172.17.8.0/24 inside 172.17.0.0/16) break the
same things. Each problem names the rule, sysctl or route it is based on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Findings, Problem, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.host.natrules import NatProblem, NatState

POLICY = (
    "keep site firewall rules in the DOCKER-USER chain (Docker never changes it) and "
    "never flush iptables wholesale (iptables -F, iptables -t nat -F, restarting an "
    "iptables service) on a Docker host"
)
NEXT_PUBLISH = (
    "Docker's next publish fails with 'iptables: No chain/target/match by that name'"
)
FORWARD_ON = (
    "turn it on: sysctl -w net.ipv4.ip_forward=1, and keep it with "
    "net.ipv4.ip_forward = 1 in /etc/sysctl.d/99-docker.conf"
)


class NatDockerCheck(Check):
    id = "nat-docker"
    title = "Docker's NAT rules are intact"
    category = "network"
    requires = ("docker-daemon",)

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host import iptables
        from shipyard_doctor.host.hints import docker_reload, docker_service
        from shipyard_doctor.host.natrules import NatEvidence, nat_state

        if not host.is_root:
            return Result.skipped(
                "iptables rules not read: iptables-save needs root",
                hints=["run the doctor as root (sudo) to check Docker's NAT rules"],
            )
        daemon = iptables.local_daemon(host)
        if daemon is None:
            return Result.skipped(
                "no dockerd serving this endpoint runs in this network namespace: "
                "its iptables rules cannot be read from here",
                details=[f"endpoint: {host.docker().endpoint.url}"],
            )
        details = [f"dockerd (pid {daemon.pid}), config file {daemon.config_file}"]
        if daemon.nftables:
            return Result.skipped(
                f"dockerd writes its firewall rules with nftables "
                f"({daemon.iptables_source}): this check reads iptables rules only",
                details=[*details, "see them with: nft list ruleset"],
            )
        if not daemon.iptables:
            return Result.skipped(
                f"dockerd does not manage iptables ({daemon.iptables_source}): "
                "containers get no NAT from Docker, so there are no rules to check",
                details=details,
            )
        saved = iptables.saved_rules(host)
        if saved.ruleset is None:
            return Result.error(
                "could not read the iptables rules",
                details=[*details, saved.command.describe()],
            )
        state = nat_state(host, saved.ruleset)
        restart = (
            "restart Docker to recreate its chains and rules: first make running "
            'containers survive it with "live-restore": true in daemon.json and '
            f"{docker_reload(host)}, then {docker_service(host, 'restart')}"
        )
        found = _verdict(state, daemon.ip_forward, restart)
        found.details[:0] = [*details, *state.describe()]
        evidence = NatEvidence(state, tuple(found.problems))
        if found.problems:
            return found.result(evidence, "problem")  # every problem here fails
        mapped = len(state.published)
        return Result.ok(
            f"Docker's NAT rules are in place ({mapped} published "
            f"port{'s' if mapped != 1 else ''} mapped)",
            details=found.details,
            evidence=evidence,
        )


def _verdict(state: NatState, forwards: bool, restart: str) -> Findings[NatProblem]:
    from shipyard_doctor.host.natrules import NatProblem

    found = Findings[NatProblem]()
    missing = state.no_dnat
    if missing:
        ports = sorted({m.host_port for m in missing})
        s, them = ("s", "them") if len(ports) > 1 else ("", "it")
        found.add(
            Problem(
                NatProblem.NO_DNAT,
                f"published port{s} {', '.join(map(str, ports))} unreachable: nat "
                f"DOCKER chain has no DNAT rule for {them} (iptables was flushed?)",
            )
        )
        if state.docker_chain:
            found.details.append(
                "the DOCKER chain itself is still there; once it is deleted too "
                f"(iptables -t nat -X, a firewall restart) {NEXT_PUBLISH}"
            )
    if not state.docker_chain:
        found.details.append(f"when Docker next publishes a port: {NEXT_PUBLISH}")
        text = (
            f"the nat DOCKER chain is missing (iptables was flushed?): {NEXT_PUBLISH}"
        )
        found.add(Problem(NatProblem.NO_DOCKER_CHAIN, text))
    for chain, where in state.missing_jumps:
        text = (
            f"nat {chain} does not jump to the DOCKER chain: published ports are "
            f"unreachable from {where}"
        )
        found.add(Problem(NatProblem.NO_JUMP, text))
    if found.problems:
        names = " ".join(sorted({m.container for m in missing}))
        restart_only = f"or restart only those containers: docker restart {names}"
        for text in (restart, *([restart_only] if missing else []), POLICY):
            found.hint(text)
    if state.ip_forward is False:
        why = "" if forwards else " (dockerd runs with ip-forward disabled)"
        text = (
            "IPv4 forwarding is off (net.ipv4.ip_forward = 0): published ports do not "
            f"forward and containers cannot reach the network{why}"
        )
        found.add(Problem(NatProblem.FORWARDING_OFF, text), FORWARD_ON)
    if state.forward_blocker:
        text = f"the FORWARD chain drops container traffic: {state.forward_blocker}"
        found.add(Problem(NatProblem.FORWARD_DROPS, text), restart, POLICY)
    for m in state.unmasqueraded:
        text = (
            f"containers on {m.bridge.interface} ({m.subnet}) cannot reach other "
            "networks: nat POSTROUTING has no MASQUERADE rule for the subnet"
        )
        found.add(Problem(NatProblem.NO_MASQUERADE, text), restart, POLICY)
    for o in state.overlaps:
        text = (
            f"Docker bridge {o.bridge.interface} ({o.subnet}) overlaps {o.clashes[0]}: "
            "services in that network are unreachable from containers"
        )
        found.add(Problem(NatProblem.OVERLAP, text), o.move_bridge)
    return found
