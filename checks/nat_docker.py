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

import ipaddress
from dataclasses import dataclass, field

from shipyard_doctor.host import iptables, netinfo
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import Check, Result

RESTART = (
    "restart Docker to recreate its chains and rules: first make running containers "
    'survive it with "live-restore": true in daemon.json and systemctl reload docker, '
    "then systemctl restart docker"
)
POLICY = (
    "keep site firewall rules in the DOCKER-USER chain (Docker never changes it) and "
    "never flush iptables wholesale (iptables -F, iptables -t nat -F, restarting an "
    "iptables service) on a Docker host"
)
NEXT_PUBLISH = (
    "Docker's next publish fails with 'iptables: No chain/target/match by that name'"
)


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)  # summaries, worst first
    details: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)  # no restart repairs these

    def hint(self, text: str) -> None:
        if text not in self.hints:
            self.hints.append(text)


class NatDockerCheck(Check):
    id = "nat-docker"
    title = "Docker's NAT rules are intact"
    category = "network"
    requires = ("docker-daemon",)

    def run(self, host: Host) -> Result:
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
        rules = saved.ruleset
        details.append(_backend(rules))
        details.extend(f"iptables-save: {note}" for note in rules.notes)
        found = Findings(details=details)
        published = _check_nat(host, rules, found)
        _check_forwarding(host, rules, daemon, found)
        bridges = iptables.docker_bridges(host)
        if bridges is None:
            found.details.append("bridges not inspected: the Docker API did not answer")
        bridges = bridges or ()
        _check_masquerade(rules, bridges, found)
        _check_overlap(host, bridges, found)
        data = {
            "backend": rules.backend,
            "published": published,
            "bridges": [
                {"name": b.interface, "subnets": [str(s) for s in b.subnets]}
                for b in bridges
            ],
            "problems": found.problems,
            "ip_forward": iptables.ip_forward(),
            "overlaps": found.overlaps,
        }
        if found.problems:
            more = len(found.problems) - 1
            summary = found.problems[0] + (
                f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
            )
            return Result.failure(
                summary, details=found.details, hints=found.hints, data=data
            )
        mapped = f"{len(published)} published port{'s' if len(published) != 1 else ''}"
        return Result.ok(
            f"Docker's NAT rules are in place ({mapped} mapped)",
            details=found.details,
            data=data,
        )


def _backend(rules: iptables.Ruleset) -> str:
    if rules.backend == "nf_tables":
        return (
            f"rules read with iptables-save {rules.version} (nf_tables): this host "
            "uses the nftables backend; iptables-save shows the rules Docker made "
            "through iptables-nft"
        )
    return f"rules read with iptables-save {rules.version} ({rules.backend or '?'})"


def _check_nat(
    host: Host, rules: iptables.Ruleset, found: Findings
) -> list[dict[str, object]]:
    nat = rules.table("nat")
    dnats = iptables.docker_dnats(nat)
    data: list[dict[str, object]] = []
    missing: list[iptables.ContainerMapping] = []
    for item in iptables.container_mappings(host):
        match = next((d for d in dnats if item.matches(d)), None)
        label = (
            f"{item.host_port}/{item.protocol} -> {item.container} "
            f"{'/'.join(item.addresses) or '(no address)'}:{item.container_port}"
        )
        if match:
            found.details.append(f"{label}: {match.rule.line}")
        else:
            missing.append(item)
            found.details.append(f"{label}: no DNAT rule in the nat DOCKER chain")
        data.append(
            {
                **item.__dict__,
                "addresses": list(item.addresses),
                "dnat": match is not None,
            }
        )
    if missing:
        ports = sorted({m.host_port for m in missing})
        plural = len(ports) > 1
        found.problems.append(
            f"published port{'s' if plural else ''} {', '.join(map(str, ports))} "
            f"unreachable: nat DOCKER chain has no DNAT rule for "
            f"{'them' if plural else 'it'} (iptables was flushed?)"
        )
        if nat.has_chain("DOCKER"):
            found.details.append(
                "the DOCKER chain itself is still there; once it is deleted too "
                f"(iptables -t nat -X, a firewall restart) {NEXT_PUBLISH}"
            )
    if not nat.has_chain("DOCKER"):
        found.details.append("nat table: no DOCKER chain")
        found.details.append(f"when Docker next publishes a port: {NEXT_PUBLISH}")
        found.problems.append(
            f"the nat DOCKER chain is missing (iptables was flushed?): {NEXT_PUBLISH}"
        )
    else:
        for chain, where in (("PREROUTING", "other hosts"), ("OUTPUT", "this host")):
            jumps = nat.jumps(chain, ["DOCKER"])
            if jumps:
                found.details.append(f"nat {chain} -> DOCKER: {jumps[0].line}")
            else:
                found.details.append(f"nat {chain}: no jump to DOCKER")
                found.problems.append(
                    f"nat {chain} does not jump to the DOCKER chain: published ports "
                    f"are unreachable from {where}"
                )
    if found.problems:
        found.hint(RESTART)
        if missing:
            names = " ".join(sorted({m.container for m in missing}))
            found.hint(f"or restart only those containers: docker restart {names}")
        found.hint(POLICY)
    return data


def _check_forwarding(
    host: Host,
    rules: iptables.Ruleset,
    daemon: iptables.DaemonFirewall,
    found: Findings,
) -> None:
    forwarding = iptables.ip_forward()
    found.details.append(
        "net.ipv4.ip_forward = "
        + {True: "1", False: "0", None: "unknown (unreadable)"}[forwarding]
    )
    if forwarding is False:
        why = "" if daemon.ip_forward else " (dockerd runs with ip-forward disabled)"
        found.problems.append(
            "IPv4 forwarding is off (net.ipv4.ip_forward = 0): published ports do "
            f"not forward and containers cannot reach the network{why}"
        )
        found.hint(
            "turn it on: sysctl -w net.ipv4.ip_forward=1, and keep it with "
            "net.ipv4.ip_forward = 1 in /etc/sysctl.d/99-docker.conf"
        )
    blocker = iptables.forward_blocker(rules.table("filter"))
    policy = rules.table("filter").policies.get("FORWARD", "?")
    if blocker:
        found.details.append(f"filter FORWARD (policy {policy}): {blocker}")
        found.problems.append(f"the FORWARD chain drops container traffic: {blocker}")
        found.hint(RESTART)
        found.hint(POLICY)
    else:
        jumps = rules.table("filter").jumps("FORWARD", iptables.FORWARD_JUMPS)
        reached = ", ".join(sorted({r.target or "" for r in jumps})) or "none"
        found.details.append(
            f"filter FORWARD (policy {policy}): Docker's chains reached: {reached}"
        )


def _check_masquerade(
    rules: iptables.Ruleset, bridges: tuple[iptables.Bridge, ...], found: Findings
) -> None:
    nat = rules.table("nat")
    for bridge in bridges:
        if bridge.internal or not bridge.masquerade:
            continue
        for subnet in bridge.subnets:
            rule = iptables.masquerade_rule(nat, subnet)
            if rule:
                found.details.append(f"{bridge.interface} {subnet}: {rule.line}")
                continue
            found.details.append(f"{bridge.interface} {subnet}: no MASQUERADE rule")
            found.problems.append(
                f"containers on {bridge.interface} ({subnet}) cannot reach other "
                "networks: nat POSTROUTING has no MASQUERADE rule for the subnet"
            )
            found.hint(RESTART)
            found.hint(POLICY)


def _check_overlap(
    host: Host, bridges: tuple[iptables.Bridge, ...], found: Findings
) -> None:
    """A bridge subnet that overlaps another network of the host hides that network
    from containers, and can hide it from the host (domain.md section 6)."""
    names = {b.interface for b in bridges}
    used: list[ipaddress.IPv4Network] = []
    for bridge in bridges:
        for subnet in bridge.subnets:
            used.append(subnet)
            clashes = netinfo.clashes(host, subnet, names)
            if not clashes:
                continue
            found.details.append(
                f"{bridge.interface} {subnet} overlaps: " + "; ".join(clashes)
            )
            found.problems.append(
                f"Docker bridge {bridge.interface} ({subnet}) overlaps {clashes[0]}: "
                "services in that network are unreachable from containers"
            )
            found.overlaps.append(found.problems[-1])
            free = netinfo.free_subnet(host, used)
            found.hint(
                "move Docker's bridge off that network: in daemon.json set "
                f'"bip": "{free[1]}/{free.prefixlen}" (a range nothing here uses) and '
                "restart Docker, or renumber the other network (coreos-vagrant: the "
                "172.17.8.x private network in its Vagrantfile)"
            )
