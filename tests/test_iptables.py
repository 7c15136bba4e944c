"""The iptables-save parser and its queries, on output recorded from a namespace
dockerd (tests/data/iptables/README.md says how each file was made), on the live
rules of the session test host, and dockerd's iptables settings from real files."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
from shipyard_doctor.host.gateway import ProcessInfo
from shipyard_doctor.host.iptables import (
    daemon_firewall,
    docker_dnats,
    forward_blocker,
    masquerade_rule,
    parse_save,
)

DATA = Path(__file__).parent / "data" / "iptables"
DOCKER0 = ipaddress.IPv4Network("172.17.0.0/16")


def recorded(name: str):
    return parse_save((DATA / name).read_text())


def test_parse_docker_rules():
    rules = recorded("docker-20.10-published.txt")
    assert (rules.backend, rules.version, rules.notes) == ("nf_tables", "1.8.9", ())
    assert set(rules.tables) == {"filter", "nat"}
    nat, filt = rules.table("nat"), rules.table("filter")
    assert nat.policies["PREROUTING"] == "ACCEPT" and nat.policies["DOCKER"] is None
    assert filt.policies["FORWARD"] == "DROP"
    (prerouting,) = nat.jumps("PREROUTING", ["DOCKER"])
    assert prerouting.line == "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"
    assert prerouting.value("--dst-type") == "LOCAL"
    assert nat.jumps("OUTPUT", ["DOCKER"])[0].negated("-d")
    dnats = docker_dnats(nat)
    assert [
        (d.protocol, d.host_port, d.destination, d.container_port) for d in dnats
    ] == [
        ("tcp", 8000, "172.17.0.2", 8000),
        ("tcp", 8080, "172.17.0.2", 80),
    ]
    assert dnats[0].rule.negated("-i") and dnats[0].rule.value("-i") == "docker0"
    masq = masquerade_rule(nat, DOCKER0)
    assert masq is not None and masq.line.endswith("! -o docker0 -j MASQUERADE")
    assert masquerade_rule(nat, ipaddress.IPv4Network("172.18.0.0/16")) is None
    assert forward_blocker(filt) is None
    assert rules.table("raw").rules == ()  # a table iptables-save did not print


def test_flushed_nat_docker_chain():
    nat = recorded("docker-20.10-nat-flushed.txt").table("nat")
    assert nat.has_chain("DOCKER") and nat.chain("DOCKER") == ()
    assert docker_dnats(nat) == ()
    assert masquerade_rule(nat, DOCKER0) is not None


def test_deleted_nat_chains():
    nat = recorded("docker-20.10-nat-deleted.txt").table("nat")
    assert not nat.has_chain("DOCKER") and nat.rules == ()


def test_forward_blockers():
    flushed = recorded("docker-20.10-filter-flushed.txt").table("filter")
    assert forward_blocker(flushed) == (
        "the FORWARD policy is DROP and no rule jumps to Docker's chains"
    )
    first = recorded("docker-20.10-drop-first.txt").table("filter")
    assert forward_blocker(first) == (
        "'-A FORWARD -j DROP' comes before any jump to Docker's chains"
    )


def test_recorded_publish_error_is_the_one_the_check_quotes():
    from shipyard_doctor.checks.nat_docker import NEXT_PUBLISH

    said = (DATA / "docker-20.10-publish-error.txt").read_text()
    # The check ends by quoting the error in single quotes: that quote must be the
    # daemon's own words, found verbatim in what a real publish printed.
    quoted = re.search(r" '([^']+)'$", NEXT_PUBLISH)
    assert quoted, f"NEXT_PUBLISH quotes no error: {NEXT_PUBLISH!r}"
    assert len(quoted.group(1)) > 20 and quoted.group(1) in said, quoted.group(1)


def test_live_rules_of_the_session_host(clean_docker_host):
    done = clean_docker_host.netns.run(["iptables-save"])
    assert done.returncode == 0, done.stderr
    rules = parse_save(done.stdout)
    nat = rules.table("nat")
    assert nat.has_chain("DOCKER") and nat.jumps("PREROUTING", ["DOCKER"])
    assert masquerade_rule(nat, DOCKER0) is not None
    assert rules.backend in {"nf_tables", "legacy"}


@pytest.mark.parametrize(
    ("argv", "config", "iptables", "source"),
    [
        (["dockerd"], None, True, "the default"),
        (["dockerd", "--iptables=false"], None, False, "--iptables=false on its"),
        (["dockerd"], {"iptables": False}, False, '"iptables": false in '),
        (["dockerd", "--iptables=true"], {"iptables": False}, True, "--iptables=true"),
        (["dockerd", "--firewall-backend=nftables"], None, False, "--firewall-backend"),
        (["dockerd"], {"firewall-backend": "nftables"}, False, '"firewall-backend"'),
    ],
)
def test_daemon_iptables_setting(tmp_path, argv, config, iptables, source):
    path = tmp_path / "daemon.json"
    if config is not None:
        path.write_text(json.dumps(config))
    process = ProcessInfo(4242, "dockerd", tuple(argv), "root")
    found = daemon_firewall(process, str(path))
    assert found.iptables is iptables
    assert found.iptables_source.startswith(source)
    assert found.hosts == ("unix:///var/run/docker.sock",)


def test_daemon_config_file_and_hosts_from_the_command_line(tmp_path):
    path = tmp_path / "custom.json"
    path.write_text('{"hosts": ["unix:///x.sock"], "ip-forward": false}')
    argv = ("dockerd", "--config-file", str(path), "-H", "tcp://127.0.0.1:2375")
    found = daemon_firewall(ProcessInfo(1, "dockerd", argv, None), "/nonexistent")
    assert found.config_file == str(path)
    assert found.hosts == ("tcp://127.0.0.1:2375",)  # flags win over the file
    assert found.ip_forward is False and found.iptables is True
