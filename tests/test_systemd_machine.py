"""The fixes on a real systemd host: a Debian machine booted with systemd-nspawn
(machine.py), systemd as PID 1 and Debian's docker.service running, the doctor
run inside it. Nothing here reaches this machine's own systemd or Docker.

One machine per module serves the tests that leave it as they found it; a test
that needs its own unit files or mounts boots its own (~4 s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DROPIN = "/etc/systemd/system/docker.service.d/shipyard-doctor.conf"


def doctor_json(machine: Any, *args: str) -> dict[str, Any]:
    run = machine.doctor(*args, "--json")
    try:
        doc: dict[str, Any] = json.loads(run.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON from {args}: {run.stdout}{run.stderr}") from None
    doc["_exit"] = run.returncode
    return doc


def check_result(machine: Any, check: str) -> dict[str, Any]:
    doc = doctor_json(machine, "check", "--only", check)
    (result,) = [r for r in doc["checks"] if r["id"] == check]
    return result


def ping_tcp(machine: Any, port: int = 4243) -> str:
    run = machine.run(
        ["curl", "-s", "--max-time", "5", f"http://127.0.0.1:{port}/_ping"]
    )
    return run.stdout


def test_manager_is_the_systemd_that_runs_dockerd(systemd_machine: Any) -> None:
    code = (
        "from shipyard_doctor.config import Config\n"
        "from shipyard_doctor.host.gateway import Host\n"
        "import json; print(json.dumps(Host(Config()).docker_manager().to_dict()))"
    )
    found = json.loads(systemd_machine.check(["/opt/sd/bin/python", "-c", code]))
    pid = int(
        systemd_machine.check(
            ["systemctl", "show", "-p", "MainPID", "--value", "docker"]
        )
    )
    assert found == {
        "kind": "systemd",
        "init": "systemd",
        "running": True,
        "pid": pid,
        "unit": "docker.service",
        "config_file": None,
    }


def test_docker_tcp_dropin_fix_answers_on_tcp_and_undo_is_byte_identical(
    systemd_machine: Any,
) -> None:
    m = systemd_machine
    before = check_result(m, "docker-tcp")
    assert before["status"] == "failure", before
    assert ping_tcp(m) == ""
    fix = doctor_json(m, "fix", "docker-tcp", "--yes")
    (report,) = fix["fixes"]
    assert report["outcome"] == "applied", report
    assert "drop-in" in report["plan"]["summary"], report["plan"]
    assert ping_tcp(m) == "OK"
    dropin = m.check(["cat", DROPIN])
    assert "-H tcp://127.0.0.1:4243" in dropin
    # systemd really loaded it: the running dockerd's command line has the address.
    exec_start = m.check(["systemctl", "show", "-p", "ExecStart", "docker"])
    assert "tcp://127.0.0.1:4243" in exec_start

    undo = m.doctor("undo")
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert m.run(["test", "-e", DROPIN]).returncode != 0
    assert m.run(["ls", "-A", "/etc/systemd/system/docker.service.d"]).stdout in ("",)
    m.check(["systemctl", "is-active", "docker"])
    assert ping_tcp(m) == ""
    assert check_result(m, "docker-tcp")["status"] == "failure"


def _coreos(root: Path) -> None:
    """A CoreOS-like host: docker.socket plus a docker-tcp.socket unit in /usr."""
    units = root / "usr/lib/systemd/system"
    (units / "docker-tcp.socket").write_text(
        "[Unit]\nDescription=Docker Socket for the API on TCP\n\n"
        "[Socket]\nListenStream=127.0.0.1:2375\nService=docker.service\n"
        "BindIPv6Only=both\n\n[Install]\nWantedBy=sockets.target\n"
    )
    wants = root / "etc/systemd/system/sockets.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "docker-tcp.socket").symlink_to(
        "/usr/lib/systemd/system/docker-tcp.socket"
    )


def test_coreos_socket_route_with_read_only_usr(boot_machine: Any) -> None:
    m = boot_machine(prepare=_coreos, nspawn_args=["--bind-ro={root}/usr:/usr"])
    # The read-only /usr is real: nothing can be written there.
    assert m.run(["touch", "/usr/lib/systemd/system/x"]).returncode != 0
    assert ping_tcp(m, 2375) == "OK"  # the host's own TCP socket unit works
    fix = doctor_json(m, "fix", "docker-tcp", "--yes")
    (report,) = fix["fixes"]
    assert report["outcome"] == "applied", report
    assert "socket" in report["plan"]["summary"], report["plan"]
    assert ping_tcp(m) == "OK"
    unit = m.check(["cat", "/etc/systemd/system/docker-tcp.socket"])
    assert "ListenStream=127.0.0.1:4243" in unit
    undo = m.doctor("undo")
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert m.run(["test", "-e", "/etc/systemd/system/docker-tcp.socket"]).returncode
    m.check(["systemctl", "is-active", "docker"])
    assert ping_tcp(m) == ""
    assert ping_tcp(m, 2375) == "OK"


def _hit_start_limit(m: Any) -> None:
    """Restart docker with a daemon.json it refuses: Debian's unit restarts it
    (Restart=on-failure) until its start limit, which docker.socket records as its
    own result."""
    m.run(["systemctl", "restart", "docker"])
    for _ in range(60):
        result = m.run(
            ["systemctl", "show", "-p", "Result", "--value", "docker.socket"]
        )
        if result.stdout.strip() == "service-start-limit-hit":
            return
        m.run(["sleep", "0.5"])
    raise AssertionError("docker.service never hit its start limit")


def test_docker_daemon_reads_the_journal_since_the_last_start(
    systemd_machine: Any,
) -> None:
    m = systemd_machine
    m.path("/etc/docker").mkdir(exist_ok=True)
    daemon_json = m.path("/etc/docker/daemon.json")
    daemon_json.write_text('{"no-such-option": true}\n')
    try:
        _hit_start_limit(m)
        down = check_result(m, "docker-daemon")
        assert down["status"] == "failure", down
        text = "\n".join(down["details"] + down["hints"])
        assert "no-such-option" in text
        assert "systemctl reset-failed docker.service docker.socket" in text

        # The key is removed, but systemd still refuses: the doctor must not quote
        # the old error, only the start limit and its remedy.
        daemon_json.write_text("{}\n")
        m.run(["systemctl", "start", "docker"])
        stale = check_result(m, "docker-daemon")
        text = "\n".join(stale["details"] + stale["hints"])
        assert "no-such-option" not in text, stale
        assert "start limit" in stale["summary"], stale
        assert stale["hints"][0].startswith("systemd refuses to start Docker again"), (
            stale
        )
        assert "systemctl start docker" in stale["hints"][0]
    finally:
        daemon_json.unlink(missing_ok=True)
        m.run(["systemctl", "reset-failed", "docker.service", "docker.socket"])
        m.check(["systemctl", "start", "docker"])
    assert check_result(m, "docker-daemon")["status"] == "ok"


def test_conflict_is_predicted_and_refusals_change_nothing(
    systemd_machine: Any,
) -> None:
    m = systemd_machine
    m.path("/etc/docker").mkdir(exist_ok=True)
    daemon_json = m.path("/etc/docker/daemon.json")
    daemon_json.write_text('{"hosts": ["unix:///var/run/docker.sock"]}\n')
    try:
        # Debian's unit passes -H fd://, daemon.json now sets "hosts" too: dockerd
        # (still running) would not start again. docker-daemon names it as well.
        check = check_result(m, "docker-tcp")
        assert check["summary"] == (
            'dockerd will not start again: -H in docker.service ExecStart and "hosts" '
            "in /etc/docker/daemon.json conflict"
        ), check
        assert 'remove "hosts" from /etc/docker/daemon.json' in check["hints"][0]
        fix = doctor_json(m, "fix", "docker-tcp", "--yes")
        (report,) = fix["fixes"]
        assert report["outcome"] == "nothing-to-do", report
        assert report["message"].startswith(
            "refused: unable to configure the Docker daemon with file "
            "/etc/docker/daemon.json: the following directives are specified both "
            "as a flag and in the configuration file: hosts:"
        ), report
    finally:
        daemon_json.unlink()
    # Beyond loopback without TLS: refused, nothing written.
    m.path("/root/wide.toml").write_text('[docker]\ntcp = "0.0.0.0:4243"\n')
    fix = doctor_json(m, "fix", "docker-tcp", "--yes", "--config", "/root/wide.toml")
    (report,) = fix["fixes"]
    assert report["message"].startswith(
        "refused: [docker] tcp = 0.0.0.0:4243 is not a loopback address and "
        "dockerd has no TLS verification with certificates"
    ), report
    assert m.run(["test", "-e", DROPIN]).returncode != 0
    assert not daemon_json.exists()
    m.check(["systemctl", "is-active", "docker"])


def _dnat_8080(machine: Any) -> list[str]:
    saved = machine.check(["iptables-save", "-t", "nat"])
    return [ln for ln in saved.splitlines() if "--dport 8080 -j DNAT" in ln]


def _web(machine: Any) -> str:
    """A container publishing 8080, no restart policy; returns its id."""
    import docker
    from infra import build_busybox_image

    client = docker.DockerClient(base_url=machine.docker_url(), timeout=60)
    try:
        image = build_busybox_image(client)
        web = client.containers.run(
            image,
            ["httpd", "-f", "-p", "80"],
            name="web",
            detach=True,
            ports={"80/tcp": 8080},
        )
        return str(web.id)
    finally:
        client.close()


def _state(machine: Any) -> tuple[str, str]:
    out = machine.check(
        ["docker", "inspect", "-f", "{{.Id}} {{.State.Status}}", "web"]
    ).split()
    return out[0], out[1]


@pytest.mark.parametrize("live_restore", [False, True], ids=["plain", "live-restore"])
def test_nat_docker_fix_keeps_the_container_and_brings_the_dnat_back(
    systemd_machine: Any, live_restore: bool
) -> None:
    m = systemd_machine
    m.path("/etc/docker").mkdir(exist_ok=True)
    daemon_json = m.path("/etc/docker/daemon.json")
    if live_restore:
        daemon_json.write_text('{"live-restore": true}\n')
        m.check(["systemctl", "restart", "docker"])
    try:
        cid = _web(m)
        assert len(_dnat_8080(m)) == 1
        m.check(["iptables", "-t", "nat", "-F", "DOCKER"])  # the flush
        assert _dnat_8080(m) == []
        fix = doctor_json(m, "fix", "nat-docker", "--yes")
        (report,) = fix["fixes"]
        assert report["outcome"] == "applied", report
        summary = report["plan"]["summary"]
        if live_restore:
            assert summary == "restart Docker so it recreates its iptables rules"
        else:
            assert summary == "restart the containers whose port mappings are gone"
        # The repaired thing: the DNAT rule is back and the very same container
        # still runs (issue 8: it used to die with Exited 137).
        assert len(_dnat_8080(m)) == 1
        assert _state(m) == (cid, "running")
        assert check_result(m, "nat-docker")["status"] == "ok"
    finally:
        m.run(["docker", "rm", "-f", "web"])
        if live_restore:
            daemon_json.unlink()
            m.check(["systemctl", "restart", "docker"])


def test_nat_docker_refuses_a_restart_that_would_stop_containers(
    systemd_machine: Any,
) -> None:
    m = systemd_machine
    try:
        cid = _web(m)
        # The whole nat table gone, chain and all: only a dockerd restart brings
        # it back, and without live-restore that would stop "web".
        m.check(["iptables", "-t", "nat", "-F"])
        m.check(["iptables", "-t", "nat", "-X", "DOCKER"])
        fix = doctor_json(m, "fix", "nat-docker", "--yes")
        (report,) = fix["fixes"]
        assert report["outcome"] == "nothing-to-do", report
        assert report["message"].endswith(
            "without live-restore a restart stops the running containers (web)"
        ), report
        assert report["plan"]["manual"][0].startswith(
            'add "live-restore": true to /etc/docker/daemon.json'
        )
        assert _state(m) == (cid, "running")
    finally:
        m.run(["docker", "rm", "-f", "web"])
        m.check(["systemctl", "restart", "docker"])  # its rules back for the others


BLOCKER = (
    "[Unit]\nDescription=Something else on Shipyard's port 8000\n\n"
    "[Service]\nExecStart=/bin/busybox httpd -f -p 8000\n\n"
    "[Install]\nWantedBy=multi-user.target\n"
)


@pytest.mark.parametrize("disable", [False, True], ids=["stop", "stop-and-disable"])
def test_ports_stops_an_enabled_service_and_says_it_comes_back(
    systemd_machine: Any, disable: bool
) -> None:
    m = systemd_machine
    m.path("/etc/systemd/system/blocker.service").write_text(BLOCKER)
    m.check(["systemctl", "daemon-reload"])
    m.check(["systemctl", "enable", "--now", "blocker.service"])
    try:
        for _ in range(50):
            if "8000" in m.check(["ss", "-ltn"]):
                break
            m.run(["sleep", "0.1"])
        extra = ["--disable-stopped"] if disable else []
        fix = doctor_json(m, "fix", "ports", "--stop-conflicting", "--yes", *extra)
        (report,) = fix["fixes"]
        assert report["outcome"] == "applied", report
        steps = report["plan"]["steps"]
        assert steps[0].startswith("run: systemctl stop blocker.service"), steps
        assert "it is enabled: it starts again at boot" in steps[0]
        active = m.run(["systemctl", "is-active", "blocker.service"]).stdout.strip()
        enabled = m.run(["systemctl", "is-enabled", "blocker.service"]).stdout.strip()
        assert active == "inactive"
        if disable:
            assert steps[1].startswith("run: systemctl disable blocker.service")
            assert enabled == "disabled"
        else:
            assert len(steps) == 1
            assert any(
                "systemctl disable blocker.service" in n
                for n in report["plan"]["notes"]
            ), report["plan"]
            assert enabled == "enabled"
        undo = m.doctor("undo")
        assert undo.returncode == 0, undo.stdout + undo.stderr
        assert m.run(["systemctl", "is-active", "blocker.service"]).stdout.strip() == (
            "active"
        )
        assert m.run(["systemctl", "is-enabled", "blocker.service"]).stdout.strip() == (
            "enabled"
        )
    finally:
        m.run(["systemctl", "disable", "--now", "blocker.service"])
        m.path("/etc/systemd/system/blocker.service").unlink()
        m.check(["systemctl", "daemon-reload"])


NETWORK = "[Match]\nName=dc0\n\n[Network]\nDHCP=ipv4\n"


def test_dhcp_fix_with_systemd_networkd_over_a_veth(
    systemd_machine: Any, tmp_path: Path, require_infra: Any
) -> None:
    """dc0 in the machine (systemd-networkd, DHCP=ipv4), its peer ds0 in a
    namespace of ours with dnsmasq: no server, no lease; the server back, the fix
    asks networkd to start over on dc0 (networkctl reconfigure) and the address
    comes."""
    import time

    from infra import Netns, stop_process

    require_infra("ip", "dnsmasq")
    m = systemd_machine
    net = Netns.create()
    server = None
    m.path("/etc/systemd/network/50-dc0.network").write_text(NETWORK)
    try:
        net.run(
            [
                "ip",
                "link",
                "add",
                "ds0",
                "type",
                "veth",
                "peer",
                "name",
                "dc0",
                "netns",
                str(m.init),
            ],
            check=True,
        )
        net.run(["ip", "addr", "add", "203.0.113.1/24", "dev", "ds0"], check=True)
        net.run(["ip", "link", "set", "ds0", "up"], check=True)
        m.check(["systemctl", "start", "systemd-networkd"])
        m.check(["ip", "link", "set", "dc0", "up"])
        # networkd asks, nobody answers; its retries back off (2, 4, 8, 16 s...).
        time.sleep(15)
        down = check_result(m, "dhcp")
        assert down["status"] == "failure", down
        assert "dc0" in down["summary"], down
        server = net.spawn(
            [
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=ds0",
                "--bind-interfaces",
                "--dhcp-range=203.0.113.50,203.0.113.99,255.255.255.0,2m",
                f"--dhcp-leasefile={tmp_path / 'dnsmasq.leases'}",
                f"--pid-file={tmp_path / 'dnsmasq.pid'}",
            ],
            log_path=tmp_path / "dnsmasq.log",
        )
        time.sleep(0.5)
        fix = doctor_json(m, "fix", "dhcp", "--yes")
        (report,) = fix["fixes"]
        assert report["outcome"] == "applied", report
        assert any(
            "networkctl reconfigure dc0" in s for s in report["plan"]["steps"]
        ), report["plan"]
        shown = m.check(["ip", "-4", "-o", "addr", "show", "dev", "dc0"])
        assert "inet 203.0.113." in shown, shown
    finally:
        if server is not None:
            stop_process(server)
        m.run(["systemctl", "stop", "systemd-networkd.socket", "systemd-networkd"])
        m.run(["ip", "link", "del", "dc0"])
        m.path("/etc/systemd/network/50-dc0.network").unlink()
        net.delete()


def test_docker_tcp_fix_resets_the_start_limit_before_its_restart(
    systemd_machine: Any,
) -> None:
    """No dockerd runs and systemd refuses to start one (its start limit): the
    installed manager (systemd, docker.service) decides the route, and the
    restart resets the failed state first, or it could not start."""
    m = systemd_machine
    m.path("/etc/docker").mkdir(exist_ok=True)
    daemon_json = m.path("/etc/docker/daemon.json")
    daemon_json.write_text('{"no-such-option": true}\n')
    try:
        _hit_start_limit(m)
        daemon_json.unlink()
        fix = doctor_json(m, "fix", "docker-tcp", "--yes")
        (report,) = fix["fixes"]
        assert report["outcome"] == "applied", report
        assert any(
            "systemctl reset-failed docker.service docker.socket" in s
            for s in report["plan"]["steps"]
        ), report["plan"]["steps"]
        assert ping_tcp(m) == "OK"
        undo = m.doctor("undo")
        assert undo.returncode == 0, undo.stdout + undo.stderr
        assert ping_tcp(m) == ""
    finally:
        daemon_json.unlink(missing_ok=True)
        m.run(["systemctl", "reset-failed", "docker.service", "docker.socket"])
        m.run(["rm", "-f", DROPIN])
        m.run(["systemctl", "daemon-reload"])
        m.check(["systemctl", "start", "docker"])


def test_a_machine_left_by_a_killed_run_is_reaped(machine_base: Path) -> None:
    """The owner of a booted machine is SIGKILLed (no teardown ran): the next
    session's reaper stops its systemd-nspawn and removes its cgroups and dir."""
    import signal
    import subprocess
    import sys
    import time

    import machine

    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import machine\n"
        "m = machine.Machine.boot(machine.Path(sys.argv[2]))\n"
        "print(m.name, m.nspawn.pid, m.root.parent, flush=True); time.sleep(600)\n"
    )
    here = str(Path(__file__).parent)
    owner = subprocess.Popen(
        [sys.executable, "-c", code, here, str(machine_base)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        name, nspawn, top = owner.stdout.readline().split()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    assert machine._alive(int(nspawn))
    cleaned = machine.reap_stale_machines()
    assert f"machine pid {nspawn}" in cleaned
    deadline = time.monotonic() + 10
    while machine._alive(int(nspawn)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not machine._alive(int(nspawn))
    assert not Path(top).exists()
    assert not any(d.exists() for d in machine._machine_cgroups(name))
