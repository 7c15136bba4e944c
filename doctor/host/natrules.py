"""Docker's NAT as the kernel has it: which of the rules Docker needs are there.

:func:`nat_state` compares the rules ``iptables-save`` shows with what Docker made
them for (the ports running containers publish, the bridge subnets), and reads IPv4
forwarding and the subnets of the host's other networks. The check nat-docker words
the verdict; :class:`NatEvidence` carries it, by kind, to the fix nat-docker.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host import iptables, netinfo
from shipyard_doctor.host.facts import Unavailable
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Problem

#: Where a missing jump from each nat chain to DOCKER makes published ports vanish.
JUMPS = (("PREROUTING", "other hosts"), ("OUTPUT", "this host"))


class NatProblem(StrEnum):
    NO_DNAT = "no-dnat"  # a published port has no DNAT rule
    NO_DOCKER_CHAIN = "no-docker-chain"
    NO_JUMP = "no-jump"  # PREROUTING or OUTPUT does not jump to DOCKER
    FORWARDING_OFF = "forwarding-off"  # net.ipv4.ip_forward = 0
    FORWARD_DROPS = "forward-drops"  # the FORWARD chain drops before Docker's
    NO_MASQUERADE = "no-masquerade"
    OVERLAP = "overlap"  # a bridge subnet overlaps another network

    @property
    def restart_repairs(self) -> bool:
        """Docker recreates the rule when it starts (forwarding is a sysctl, an
        overlap needs a renumbering)."""
        return self not in (NatProblem.FORWARDING_OFF, NatProblem.OVERLAP)


@record
class Published:
    """A port a container publishes, and the DNAT rule for it in nat DOCKER, if any."""

    mapping: iptables.ContainerMapping
    dnat: iptables.Rule | None


@record
class Masquerade:
    """A Docker bridge subnet and its MASQUERADE rule in nat POSTROUTING, if any."""

    bridge: iptables.Bridge
    subnet: ipaddress.IPv4Network
    rule: iptables.Rule | None


@record
class Overlap:
    """A Docker bridge subnet that clashes with another network of this host, and a
    free subnet to move the bridge to."""

    bridge: iptables.Bridge
    subnet: ipaddress.IPv4Network
    clashes: tuple[str, ...]  # "172.17.8.0/24 on eth1", first the worst
    free: ipaddress.IPv4Network  # a subnet nothing here uses, for "bip"

    @property
    def move_bridge(self) -> str:
        """The manual step: move Docker's bridge where nothing else is."""
        return (
            "move Docker's bridge off that network: in daemon.json set "
            f'"bip": "{self.free[1]}/{self.free.prefixlen}" (a range nothing here '
            "uses) and restart Docker, or renumber the other network (coreos-vagrant: "
            "the 172.17.8.x private network in its Vagrantfile)"
        )


def _backend(rules: iptables.Ruleset) -> str:
    if rules.backend == "nf_tables":
        return (
            f"rules read with iptables-save {rules.version} (nf_tables): this host "
            "uses the nftables backend; iptables-save shows the rules Docker made "
            "through iptables-nft"
        )
    return f"rules read with iptables-save {rules.version} ({rules.backend or '?'})"


@record
class NatState:
    """Docker's NAT as the kernel has it: the rules present and missing, IPv4
    forwarding, and the bridge subnets that clash."""

    rules: iptables.Ruleset
    published: tuple[Published, ...]
    docker_chain: bool
    jumps: tuple[tuple[str, str, iptables.Rule | None], ...]  # chain, from where
    ip_forward: bool | None  # None: unreadable
    forward_policy: str
    forward_blocker: str | None
    forward_reached: tuple[str, ...]  # Docker's chains FORWARD jumps to
    bridges: tuple[iptables.Bridge, ...] | Unavailable
    masquerades: tuple[Masquerade, ...]
    overlaps: tuple[Overlap, ...]

    @property
    def no_dnat(self) -> list[iptables.ContainerMapping]:
        """The published mappings nat DOCKER has no DNAT rule for."""
        return [p.mapping for p in self.published if p.dnat is None]

    @property
    def missing_jumps(self) -> list[tuple[str, str]]:
        """(chain, from where) of the nat chains that do not jump to DOCKER; none
        counted once the DOCKER chain itself is gone."""
        if not self.docker_chain:
            return []
        return [(chain, where) for chain, where, jump in self.jumps if jump is None]

    @property
    def unmasqueraded(self) -> list[Masquerade]:
        """The Docker subnets nat POSTROUTING has no MASQUERADE rule for."""
        return [m for m in self.masquerades if m.rule is None]

    def describe(self) -> list[str]:
        """The evidence, one line per rule, sysctl and subnet looked at."""
        lines = [_backend(self.rules)]
        lines += [f"iptables-save: {note}" for note in self.rules.notes]
        for p in self.published:
            item = p.mapping
            where = "/".join(item.addresses) or "(no address)"
            rule = p.dnat.line if p.dnat else "no DNAT rule in the nat DOCKER chain"
            lines.append(
                f"{item.host_port}/{item.protocol} -> {item.container} {where}:"
                f"{item.container_port}: {rule}"
            )
        if not self.docker_chain:
            lines.append("nat table: no DOCKER chain")
        for chain, _where, jump in self.jumps if self.docker_chain else ():
            got = f" -> DOCKER: {jump.line}" if jump else ": no jump to DOCKER"
            lines.append(f"nat {chain}{got}")
        value = {True: "1", False: "0", None: "unknown (unreadable)"}[self.ip_forward]
        lines.append(f"net.ipv4.ip_forward = {value}")
        reached = (
            f"Docker's chains reached: {', '.join(self.forward_reached) or 'none'}"
        )
        lines.append(
            f"filter FORWARD (policy {self.forward_policy}): "
            + (self.forward_blocker or reached)
        )
        if isinstance(self.bridges, Unavailable):
            lines.append(
                "bridges not inspected: the Docker API did not answer "
                f"({self.bridges.reason})"
            )
        for m in self.masquerades:
            rule = m.rule.line if m.rule else "no MASQUERADE rule"
            lines.append(f"{m.bridge.interface} {m.subnet}: {rule}")
        lines += [
            f"{o.bridge.interface} {o.subnet} overlaps: " + "; ".join(o.clashes)
            for o in self.overlaps
        ]
        return lines


def nat_state(host: Host, rules: iptables.Ruleset) -> NatState:
    nat, filters = rules.table("nat"), rules.table("filter")
    dnats = iptables.docker_dnats(nat)
    published = tuple(
        Published(item, next((d.rule for d in dnats if item.matches(d)), None))
        for item in iptables.container_mappings(host)
    )
    bridges = iptables.docker_bridges(host)
    masquerades = tuple(
        Masquerade(bridge, subnet, iptables.masquerade_rule(nat, subnet))
        for bridge in bridges or ()
        if bridge.masquerade and not bridge.internal
        for subnet in bridge.subnets
    )
    return NatState(
        rules=rules,
        published=published,
        docker_chain=nat.has_chain("DOCKER"),
        jumps=tuple(
            (chain, where, next(iter(nat.jumps(chain, ["DOCKER"])), None))
            for chain, where in JUMPS
        ),
        ip_forward=iptables.ip_forward(host.proc),
        forward_policy=filters.policies.get("FORWARD") or "?",
        forward_blocker=iptables.forward_blocker(filters),
        forward_reached=tuple(
            sorted(
                {
                    r.target or ""
                    for r in filters.jumps("FORWARD", iptables.FORWARD_JUMPS)
                }
            )
        ),
        bridges=bridges,
        masquerades=masquerades,
        overlaps=_overlaps(host, bridges or ()),
    )


def _overlaps(host: Host, bridges: tuple[iptables.Bridge, ...]) -> tuple[Overlap, ...]:
    """A bridge subnet that overlaps another network of the host hides that network
    from containers, and can hide it from the host (domain.md section 6)."""
    names = {b.interface for b in bridges}
    used: list[ipaddress.IPv4Network] = []
    found = []
    for bridge in bridges:
        for subnet in bridge.subnets:
            used.append(subnet)
            clashes = netinfo.clashes(host, subnet, names)
            if clashes:
                free = netinfo.free_subnet(host, used)
                found.append(Overlap(bridge, subnet, tuple(clashes), free))
    return tuple(found)


@record
class NatEvidence:
    """What nat-docker found: the state it judged and its problems, by kind."""

    state: NatState
    problems: tuple[Problem[NatProblem], ...]

    def has(self, kind: NatProblem) -> bool:
        return any(p.kind is kind for p in self.problems)

    @property
    def restart_repairs(self) -> bool:
        return any(p.kind.restart_repairs for p in self.problems)

    def to_data(self) -> dict[str, Any]:
        s = self.state
        return {
            "backend": s.rules.backend,
            "published": [
                {
                    **p.mapping.__dict__,
                    "addresses": list(p.mapping.addresses),
                    "dnat": p.dnat is not None,
                }
                for p in s.published
            ],
            "bridges": [
                {"name": b.interface, "subnets": [str(n) for n in b.subnets]}
                for b in s.bridges or ()
            ],
            "problems": [p.text for p in self.problems],
            "ip_forward": s.ip_forward,
            "overlaps": [p.text for p in self.problems if p.kind is NatProblem.OVERLAP],
        }
