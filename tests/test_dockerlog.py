"""The known-causes table on recorded real dockerd output, and reading the log from a
real file (tail of a large one, the last start attempt only)."""

from __future__ import annotations

from shipyard_doctor.config import Config, DockerConfig
from shipyard_doctor.host.dockerlog import (
    DaemonLog,
    daemon_log,
    known_causes,
    tail_lines,
)
from shipyard_doctor.host.gateway import Host

# Recorded on this machine (Debian 12, docker.io 20.10.24+dfsg1): dockerd started in
# a test namespace with its own root under /tmp, one failure at a time; stderr as
# dockerd wrote it.
CONFLICT = (
    "unable to configure the Docker daemon with file /tmp/sdt-d7790-ly32xm8j/daemon"
    ".json: the following directives are specified both as a flag and in the "
    "configuration file: hosts: (from flag: [unix:///tmp/sdt-d7790-ly32xm8j/d.sock], "
    "from file: [tcp://127.0.0.1:4243])"
)
TYPO = (
    "unable to configure the Docker daemon with file /tmp/sdt-d7790-nw11vbju/daemon"
    ".json: the following directives don't match any configuration option: "
    "live-restor"
)
STARTING = 'time="2026-11-25T15:00:01.919589205Z" level=info msg="Starting up"'
NO_SOCKETS = (
    "failed to load listeners: no sockets found via socket activation: make sure "
    "the service was started by systemd"
)
IN_USE = [
    'time="2026-11-25T15:00:02.222032077Z" level=info msg="Starting up"',
    'time="2026-11-25T15:00:02.223568315Z" level=warning msg="Binding to IP address '
    "without --tlsverify is insecure and gives root access on this machine to "
    'everyone who has access to your network." host="tcp://127.0.0.1:4243"',
    "failed to load listeners: listen tcp 127.0.0.1:4243: bind: address already in use",
]
NO_CONTAINERD = (
    'failed to start containerd: exec: "containerd": executable file not found in $PATH'
)
# pydemia/docker@8252803cf69a2749a154b3d8536e82d84c372932
# troubleshooting/centos_qemu.md (CentOS 7 on QEMU, 2020): `dockerd --debug`.
DEVICES = [
    "WARN[2020-10-20T15:20:32.150472548+09:00] mountpoint for pids not found",
    "DEBU[2020-10-20T15:20:32.150688340+09:00] Cleaning up old mountid : start.",
    "failed to start daemon: Devices cgroup isn't mounted",
]
# The journal form, verbatim from domain.md §2.2 (issue moby/moby#20317 and kin).
JOURNAL_CONFLICT = (
    "unable to configure the Docker daemon with file /etc/docker/daemon.json: the "
    "following directives are specified both as a flag and in the configuration "
    "file: hosts: (from flag: [fd://], from file: [unix:///var/run/docker.sock "
    "tcp://0.0.0.0:2375])"
)


def ids(lines):
    return [m.cause.id for m in known_causes(lines)]


def test_hosts_conflict_names_the_file_and_both_ways_out():
    (match,) = known_causes([STARTING, CONFLICT])
    assert match.cause.id == "hosts-flag-and-file"
    assert match.line == CONFLICT
    assert "/tmp/sdt-d7790-ly32xm8j/daemon.json" in match.explanation
    assert len(match.hints) == 2
    assert 'remove "hosts" from /tmp/sdt-d7790-ly32xm8j/daemon.json' in match.hints[0]
    assert "ExecStart= and ExecStart=/usr/bin/dockerd (no -H)" in match.hints[1]
    (known,) = known_causes([CONFLICT], {"dockerd": "/usr/sbin/dockerd"})
    assert "ExecStart=/usr/sbin/dockerd (no -H)" in known.hints[1]
    assert ids([JOURNAL_CONFLICT]) == ["hosts-flag-and-file"]


def test_each_recorded_failure_has_its_cause():
    assert ids([TYPO]) == ["unknown-directive"]
    (typo,) = known_causes([TYPO])
    assert "live-restor" in typo.explanation and "live-restor" in typo.hints[0]
    assert ids([STARTING, NO_SOCKETS]) == ["no-socket-activation"]
    (in_use,) = known_causes(IN_USE)
    assert in_use.cause.id == "tcp-address-in-use"
    assert "ss -ltnp 'sport = :4243'" in in_use.hints[0]
    assert ids([NO_CONTAINERD]) == ["containerd"]
    assert ids(DEVICES) == ["devices-cgroup"]


def test_a_containers_port_is_not_the_daemons_address():
    # A container publishing a taken port (domain.md §1.2) does not stop dockerd.
    proxy = (
        "Error starting userland proxy: listen tcp 0.0.0.0:80: bind: address "
        "already in use"
    )
    assert ids([proxy]) == []
    assert ids(['level=info msg="API listen on /var/run/docker.sock"']) == []


def test_only_the_last_start_attempt_counts():
    log = DaemonLog("test", (STARTING, NO_SOCKETS, *IN_USE))
    assert ids(log.last_attempt()) == ["tcp-address-in-use"]
    # A config error is printed before "Starting up" and is still the last attempt.
    log = DaemonLog("test", (*IN_USE, CONFLICT))
    assert ids(log.last_attempt()) == ["hosts-flag-and-file"]


def test_journal_lines_of_systemd_do_not_end_an_attempt():
    # systemd's lines are real (pydemia/docker, as above); the dockerd line is the
    # recorded message with the journal's prefix, as journalctl -u docker shows it.
    journal = [
        f"Oct 20 15:14:59 accmaster dockerd[12617]: {NO_SOCKETS}",
        "Oct 20 15:14:59 accmaster systemd[1]: Failed to start Docker Application "
        "Container Engine.",
        "Oct 20 15:14:59 accmaster systemd[1]: docker.service failed.",
    ]
    log = DaemonLog("journalctl -u docker.service", (STARTING, CONFLICT, *journal))
    assert ids(log.last_attempt()) == ["no-socket-activation"]


def test_tail_of_a_large_log_file(tmp_path):
    path = tmp_path / "docker.log"
    filler = "x" * 199 + "\n"
    path.write_text(filler * 5000 + "\n".join(IN_USE) + "\n")  # ~1 MB
    lines = tail_lines(str(path), count=3)
    assert lines == IN_USE


def test_configured_log_file_is_read(tmp_path):
    path = tmp_path / "dockerd.log"
    path.write_text(f"{STARTING}\n{NO_SOCKETS}\n")
    host = Host(Config(docker=DockerConfig(log_file=str(path))))
    log = daemon_log(host)
    assert log.source == str(path) and log.lines == (STARTING, NO_SOCKETS)
    missing = Host(Config(docker=DockerConfig(log_file=str(tmp_path / "nope"))))
    assert daemon_log(missing).problem == f"{tmp_path / 'nope'} does not exist"
