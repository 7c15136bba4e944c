"""docker-state on real infrastructure: two dockerds in one namespace (one with a
container in its data-root, one empty), DOCKER_HOST and a docker context made by the
real docker CLI pointing at the other daemon, a daemon reached over TCP and a unix
socket at once, and Shipyard stacks made of stand-in containers (half-deployed,
whole, and with the UI on a random host port)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import infra_setup
from doctor_cli import run_doctor
from infra import Dockerd, InfraMissing, Netns, build_busybox_image, tag_image
from shipyard_doctor.host.daemonconf import parse_dockerd_argv
from shipyard_doctor.host.dockerstate import client_endpoints

DOCKERD_TOOLS = ("dockerd", "containerd", "runc", "iptables", "busybox", "nsenter")


# --- command lines and CLI files ------------------------------------------------------


@pytest.mark.parametrize(
    ("cmdline", "hosts", "root", "config"),
    [
        # The CoreOS story's unit, after the user's edit.
        (
            "/usr/bin/docker -d -r=false -H tcp://127.0.0.1:4243 -H fd://",
            ("tcp://127.0.0.1:4243", "fd://"),
            None,
            None,
        ),
        # CoreOS docs 2014 (coreos/docs@6141c6e customizing-docker).
        ("/usr/bin/docker -d -s=btrfs -r=false -H fd://", ("fd://",), None, None),
        # Debian 12 docker.io, /lib/systemd/system/docker.service on this machine.
        (
            "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock",
            ("fd://",),
            None,
            None,
        ),
        # The test bed's daemons (infra.Dockerd); then spellings Go's flag package
        # accepts and pre-17.05 -g (written here, not recorded).
        (
            "dockerd --config-file /tmp/sdt-d1/daemon.json",
            (),
            None,
            "/tmp/sdt-d1/daemon.json",
        ),
        (
            "dockerd -g /srv/docker --host=unix:///a.sock",
            ("unix:///a.sock",),
            "/srv/docker",
            None,
        ),
        ("dockerd --data-root=/data/docker", (), "/data/docker", None),
    ],
)
def test_dockerd_command_lines(cmdline, hosts, root, config):
    args = parse_dockerd_argv(cmdline.split())
    assert (args.hosts, args.data_root, args.config_file) == (hosts, root, config)


@pytest.fixture
def docker_cli(require_infra) -> str:
    """The real docker CLI (only for `docker context`; no daemon is asked)."""
    cli = shutil.which("docker")
    with infra_setup():
        if cli is None:
            raise InfraMissing("docker CLI not found: apt-get install docker.io")
    assert cli is not None
    return cli


def make_context(cli: str, home: Path, name: str, url: str) -> None:
    """`docker context create NAME --docker host=URL` and `docker context use NAME`
    with HOME set to a temp dir, as a user would type them."""
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for argv in (
        [cli, "context", "create", name, "--docker", f"host={url}"],
        [cli, "context", "use", name],
    ):
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)


def test_context_files_written_by_the_real_cli(docker_cli, tmp_path):
    make_context(docker_cli, tmp_path, "other-daemon", "unix:///run/sdt-x/d.sock")
    (endpoint,) = client_endpoints({"HOME": str(tmp_path)})
    assert endpoint.url == "unix:///run/sdt-x/d.sock"
    assert endpoint.source.startswith("docker context other-daemon (")
    # DOCKER_HOST is listed too; DOCKER_CONTEXT=default wins over currentContext.
    both = client_endpoints({"HOME": str(tmp_path), "DOCKER_HOST": "tcp://h:2375"})
    assert [e.url for e in both] == ["tcp://h:2375", "unix:///run/sdt-x/d.sock"]
    assert client_endpoints({"HOME": str(tmp_path), "DOCKER_CONTEXT": "default"}) == []


# --- two daemons in one namespace -----------------------------------------------------


@dataclass
class Pair:
    netns: Netns
    empty: Dockerd  # the daemon the doctor is pointed at
    full: Dockerd  # a second daemon whose data-root holds a container


@pytest.fixture
def daemon_pair(netns, require_infra) -> Iterator[Pair]:
    require_infra(*DOCKERD_TOOLS)
    started: list[Dockerd] = []
    try:
        started.append(Dockerd.start(netns))
        started.append(Dockerd.start(netns))
        client = started[1].client()
        image = build_busybox_image(client)
        client.containers.create(image, ["true"], name="old-work")
        yield Pair(netns, *started)
    finally:
        for daemon in reversed(started):
            daemon.stop()


def system_daemon_json(tmp_path: Path) -> Path:
    """A config whose [docker] daemon_json names an empty data-root: the machine's
    own /var/lib/docker stays out of the test."""
    (tmp_path / "system-root").mkdir()
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"data-root": str(tmp_path / "system-root")}))
    config = tmp_path / "config.toml"
    config.write_text(f"[docker]\ndaemon_json = '{daemon_json}'\n")
    return config


def state(url: str, ns: Netns, config: Path, **env: str) -> dict:
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-state",
        "--docker-host",
        url,
        netns=ns,
        config=config,
        env=env,
    )
    return run.check("docker-state")


def test_second_daemon_other_data_root_and_clients_elsewhere(
    daemon_pair, docker_cli, tmp_path
):
    empty, full = daemon_pair.empty, daemon_pair.full
    home = tmp_path / "home"
    home.mkdir()
    make_context(docker_cli, home, "old-host", full.url)
    check = state(
        empty.url,
        daemon_pair.netns,
        system_daemon_json(tmp_path),
        DOCKER_HOST=full.url,
        HOME=str(home),
    )
    assert check["status"] == "warning", check
    details = check["details"]
    two = next(d for d in details if d.startswith("2 dockerd processes are running"))
    for daemon in (empty, full):
        assert (
            f"dockerd pid {daemon.pid}: -H {daemon.url}, data-root {daemon.root}/data,"
            f" config {daemon.root}/daemon.json" in two
        )
    assert (
        f"DOCKER_HOST points the docker CLI at {full.url}, another daemon, not at "
        f"{empty.url} (checked here)" in details
    )
    assert any(
        d.startswith("docker context old-host (")
        and d.endswith(
            f"points the docker CLI at {full.url}, another daemon, not at "
            f"{empty.url} (checked here)"
        )
        for d in details
    ), details
    assert (
        f"data-root {empty.root}/data of {empty.url} holds no containers while "
        f"{full.root}/data (dockerd pid {full.pid}) holds 1" in details
    )
    assert check["summary"].startswith("2 dockerd processes are running")
    assert check["summary"].endswith("(and 3 more)")
    assert any("docker context use default" in h for h in check["hints"])
    # Both were started by hand: each is named by its pid (root: no sudo).
    (stop,) = [h for h in check["hints"] if h.startswith("run one dockerd per host")]
    assert f"kill {empty.pid}" in stop and f"kill {full.pid}" in stop, stop
    assert "systemctl" not in stop and "sudo" not in stop, stop


def test_one_daemon_reached_over_tcp_and_unix_is_healthy(
    netns, require_infra, docker_cli, tmp_path
):
    # The story's daemon: -H tcp://127.0.0.1:4243 next to the unix socket. A client
    # on the TCP address talks to the very daemon the doctor checks.
    require_infra(*DOCKERD_TOOLS)
    daemon = Dockerd.start(netns, extra_hosts=("tcp://127.0.0.1:4243",))
    try:
        home = tmp_path / "home"
        home.mkdir()
        make_context(docker_cli, home, "same", daemon.url)
        check = state(
            daemon.url,
            netns,
            system_daemon_json(tmp_path),
            DOCKER_HOST="tcp://127.0.0.1:4243",
            HOME=str(home),
        )
    finally:
        daemon.stop()
    assert check["status"] == "ok", check
    assert check["summary"] == (
        f"one Docker daemon ({daemon.url}), no client pointed elsewhere, "
        "Shipyard v1 is not deployed"
    )
    assert any(
        d.startswith("DOCKER_HOST: tcp://127.0.0.1:4243, the same daemon (ID ")
        for d in check["details"]
    ), check["details"]
    assert any(
        d.startswith("docker context same (") and d.endswith(", the daemon checked")
        for d in check["details"]
    )


# --- Shipyard stacks of stand-in containers -------------------------------------------

V1 = (  # container, image, published ports (None: random host port)
    ("shipyard_redis", "shipyard/redis", {"6379/tcp": 6379}),
    ("shipyard_router", "shipyard/router", {"80/tcp": None}),
    ("shipyard_lb", "shipyard/lb", {"80/tcp": 80}),
    ("shipyard_db", "shipyard/db", {"5432/tcp": None}),
    ("shipyard", "shipyard/shipyard", {"8000/tcp": 8000}),
)


def deploy(host, names: set[str], ui_ports: dict | None = None) -> None:
    tag_image(host.client, host.image, *(f"{image}:latest" for _, image, _ in V1))
    for name, image, ports in V1:
        if name not in names:
            continue
        if name == "shipyard" and ui_ports is not None:
            ports = ui_ports
        host.client.containers.run(
            image, ["sleep", "3600"], name=name, detach=True, ports=ports
        )


def half_deploy(host):
    """Shipyard v1 as a failed install leaves it: redis running, the router exited,
    the rest never created."""
    deploy(host, {"shipyard_redis"})
    tag_image(host.client, host.image, "shipyard/router:latest")
    router = host.client.containers.run(
        "shipyard/router", ["true"], name="shipyard_router", detach=True
    )
    router.wait(timeout=30)
    return router


def test_half_deployed_stack(clean_docker_host, tmp_path):
    host = clean_docker_host
    half_deploy(host)
    check = state(host.dockerd.url, host.netns, system_daemon_json(tmp_path))
    assert check["status"] == "failure", check
    assert check["summary"] == (
        "Shipyard v1 is half-deployed: shipyard_redis running; shipyard_router "
        "exited; shipyard_lb, shipyard_db, shipyard missing"
    )
    assert check["hints"] == [
        "see why shipyard_router stopped: docker logs shipyard_router",
        "remove the leftovers and deploy again: docker rm -f shipyard_redis "
        "shipyard_router",
    ]


def test_whole_stack_is_healthy(clean_docker_host, tmp_path):
    host = clean_docker_host
    deploy(host, {name for name, _, _ in V1})
    check = state(host.dockerd.url, host.netns, system_daemon_json(tmp_path))
    assert check["status"] == "ok", check
    assert check["summary"] == (
        f"one Docker daemon ({host.dockerd.url}), no client pointed elsewhere, "
        "Shipyard v1 is deployed"
    )


def test_ui_on_a_random_host_port(clean_docker_host, tmp_path):
    # The July-2014 deploy script's `-p :8000` (domain.md section 0.4).
    host = clean_docker_host
    deploy(host, {name for name, _, _ in V1}, ui_ports={"8000/tcp": None})
    real = host.client.api.port("shipyard", 8000)[0]["HostPort"]
    check = state(host.dockerd.url, host.netns, system_daemon_json(tmp_path))
    assert check["status"] == "failure", check
    assert check["summary"] == (
        f"shipyard publishes 8000/tcp on host port {real}, not 8000: the UI is at "
        f"http://HOST:{real}"
    )
    assert "docker rm -f shipyard" in check["hints"][0]
