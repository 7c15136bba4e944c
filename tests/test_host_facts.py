"""How Host remembers facts, says why one is missing, and where it reads the host."""

from __future__ import annotations

import shutil
from pathlib import Path

from doctor_cli import run_doctor
from shipyard_doctor.config import Config, HostConfig
from shipyard_doctor.host import netinfo
from shipyard_doctor.host.facts import Unavailable, fact_key, host_fact
from shipyard_doctor.host.gateway import Host

DATA = Path(__file__).parent / "data"
NO_DOCKER = "unix:///nonexistent/shipyard-doctor-test.sock"

calls: list[tuple[str, int]] = []


@host_fact
def _scaled(host: Host, name: str, factor: int) -> str:
    calls.append((name, factor))
    return name * factor


def test_a_fact_is_computed_once_per_host_and_arguments():
    calls.clear()
    with Host(Config()) as host:
        assert _scaled(host, "ab", 2) == "abab"
        assert _scaled(host, "ab", 2) == "abab"
        assert _scaled(host, "ab", 3) == "ababab"  # other arguments: computed again
        assert _scaled(host, "cd", 2) == "cdcd"
        assert calls == [("ab", 2), ("ab", 3), ("cd", 2)]
        assert host.memo(fact_key(_scaled, "ab", 3), lambda: "unused") == "ababab"
    with Host(Config()) as other:  # a new host knows nothing yet
        assert _scaled(other, "ab", 2) == "abab"
    assert calls[-1] == ("ab", 2)


def test_a_docker_fact_that_cannot_be_read_says_why():
    from shipyard_doctor.config import DockerConfig

    config = Config(docker=DockerConfig(host=NO_DOCKER))
    with Host(config) as host:
        containers = host.containers()
        assert isinstance(containers, Unavailable)
        assert "does not exist" in containers.reason
        assert not containers  # "containers or ()" treats it as none
        assert tuple(containers or ()) == ()


def test_ports_check_shows_why_containers_were_not_inspected():
    run = run_doctor("check", "--only", "ports", "--json", "--docker-host", NO_DOCKER)
    details = run.check("ports")["details"]
    assert "containers not inspected: the Docker API did not answer" in details
    assert (
        "Docker API: /nonexistent/shipyard-doctor-test.sock does not exist" in details
    )


def _recorded_roots(tmp_path: Path) -> tuple[Path, Path]:
    proc, etc = tmp_path / "proc", tmp_path / "etc"
    (proc / "net").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "sys/net/ipv4").mkdir(parents=True)
    shutil.copy(DATA / "proc/net-route.txt", proc / "net/route")
    shutil.copy(DATA / "proc/net-tcp.txt", proc / "net/tcp")
    shutil.copy(DATA / "proc/net-tcp6.txt", proc / "net/tcp6")
    (proc / "sys/net/ipv4/ip_forward").write_text("0\n")
    # A CoreOS-like machine: / and /usr read-only, from a recorded-style mountinfo.
    (proc / "self/mountinfo").write_text(
        "27 1 254:0 / / ro,relatime - ext4 /dev/recorded-root ro\n"
        "28 27 254:3 / /usr ro,relatime - ext4 /dev/recorded-usr ro\n"
    )
    etc.mkdir()
    (etc / "os-release").write_text('ID=flatcar\nPRETTY_NAME="Flatcar (recorded)"\n')
    return proc, etc


def test_roots_come_from_the_configuration(tmp_path):
    proc, etc = _recorded_roots(tmp_path)
    release = str(etc / "os-release")
    config = Config(host=HostConfig(proc_dir=str(proc), os_release=release))
    with Host(config) as host:
        assert [r.interface for r in netinfo.routes(host)][:2] == ["vA", "vA"]
        assert {item.port for item in host.tcp_listeners()} >= {6379, 80}
        assert host.summary()["os"] == "Flatcar (recorded)"


def test_check_reads_the_configured_proc_and_etc(tmp_path):
    proc, etc = _recorded_roots(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[host]\nproc_dir = "{proc}"\nos_release = "{etc}/os-release"\nlib_dirs = []\n'
    )
    run = run_doctor("check", "--only", "lib-readonly", "--json", config=config)
    check = run.check("lib-readonly")
    assert check["status"] in ("warning", "failure"), check
    sources = {d["source"] for d in check["data"]["lib_dirs"]}
    assert sources <= {"/dev/recorded-root", "/dev/recorded-usr"}, sources
    assert check["data"]["coreos"].startswith("read-only /usr (ext4 /dev/recorded-usr")


def test_roots_must_be_absolute(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[host]\nproc_dir = "proc"\n')
    run = run_doctor("check", "--only", "ports", config=config)
    assert run.code == 2
    assert "proc_dir" in run.stderr
    assert "must be an absolute path" in run.stderr
