"""Fixes decide from typed evidence, never from a check's sentences: rewording a
problem changes no plan, and the JSON ``data`` is made from the evidence."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from shipyard_doctor.config import Config
from shipyard_doctor.fixes.nat_docker import FORWARD_ON, NatDockerFix
from shipyard_doctor.fixing import FixOptions
from shipyard_doctor.host.dhcpstate import requests_from_data
from shipyard_doctor.host.dockerapi import Problem as ApiProblem
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.iptables import Bridge, parse_save
from shipyard_doctor.host.natrules import NatEvidence, NatProblem, NatState, Overlap
from shipyard_doctor.host.tcpapi import TcpEvidence, TcpState
from shipyard_doctor.model import Problem, Result

DATA = Path(__file__).parent / "data" / "iptables"
DOCKER0 = Bridge(
    "bridge", "docker0", (ipaddress.IPv4Network("172.17.0.0/16"),), True, False
)


def _nat(problems: tuple[Problem[NatProblem], ...], overlaps=()) -> Result:
    rules = parse_save((DATA / "docker-20.10-published.txt").read_text())
    state = NatState(
        rules=rules,
        published=(),
        docker_chain=True,
        jumps=(),
        ip_forward=False,
        forward_policy="DROP",
        forward_blocker=None,
        forward_reached=("DOCKER-USER",),
        bridges=(DOCKER0,),
        masquerades=(),
        overlaps=overlaps,
    )
    return Result.failure(problems[0].text, evidence=NatEvidence(state, problems))


def test_a_reworded_problem_plans_the_same_fix():
    plans = [
        NatDockerFix().plan(
            _nat((Problem(NatProblem.FORWARDING_OFF, words),)),
            Host(Config()),
            FixOptions(),
        )
        for words in ("IPv4 forwarding is off (net.ipv4.ip_forward = 0)", "reworded")
    ]
    for plan in plans:
        assert [s.argv for s in plan.steps] == [FORWARD_ON]  # no Docker restart
        assert plan.summary == "turn IPv4 forwarding on"


def test_an_overlap_is_a_manual_step_from_its_fields():
    overlap = Overlap(
        DOCKER0,
        DOCKER0.subnets[0],
        ("172.17.8.0/24 on eth1",),
        ipaddress.IPv4Network("172.18.0.0/16"),
    )
    result = _nat((Problem(NatProblem.OVERLAP, "any words"),), (overlap,))
    assert result.data["overlaps"] == ["any words"]
    assert result.data["ip_forward"] is False
    assert result.data["bridges"] == [{"name": "docker0", "subnets": ["172.17.0.0/16"]}]
    plan = NatDockerFix().plan(result, Host(Config()), FixOptions())
    assert plan.steps == ()
    assert plan.manual == (overlap.move_bridge,)
    assert '"bip": "172.18.0.1/16"' in overlap.move_bridge


def test_tcp_evidence_states_and_its_json_read_back():
    base = TcpEvidence("tcp://127.0.0.1:4243", False, None, None, None, (), None)
    exposed = TcpEvidence(**{**base.__dict__, "exposures": ("0.0.0.0:4243 (x)",)})
    conflict = TcpEvidence(**{**base.__dict__, "conflict": "hosts twice"})
    other = TcpEvidence(**{**base.__dict__, "problem": ApiProblem.NOT_DOCKER})
    answers = TcpEvidence(**{**base.__dict__, "answers": True})
    assert [e.state for e in (base, exposed, conflict, other, answers)] == [
        TcpState.NOT_LISTENING,
        TcpState.EXPOSED,
        TcpState.CONFLICT,
        TcpState.NOT_DOCKER,
        TcpState.ANSWERS,
    ]
    for evidence in (exposed, conflict, other, answers):
        assert TcpEvidence.from_data(evidence.to_data()) == evidence
    assert base.to_data()["routes"] == []  # only when it does not answer


def test_dhcp_requests_read_back_from_json():
    data = {
        "interfaces": [
            {"name": "eth0", "state": "ok", "clients": [7]},
            {"name": "eth1", "state": "link-local", "clients": [7]},
            {"name": "eth2", "state": "no-address", "clients": []},
        ],
        "clients": [
            {"pid": 7, "name": "dhclient", "cmdline": ["dhclient", "eth0", "eth1"],
             "interfaces": ["eth0", "eth1"], "lease_file": None},
        ],
    }  # fmt: skip
    requests = requests_from_data(data)
    assert [r.interface for r in requests] == ["eth1", "eth2"]
    (client,) = requests[0].clients
    assert (client.name, client.process.pid, client.interfaces) == (
        "dhclient",
        7,
        ("eth0", "eth1"),
    )
    assert requests[1].clients == ()
