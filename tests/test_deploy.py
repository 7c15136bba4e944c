"""`deploy`, `status` and `undeploy` on real infrastructure: a dockerd in its own
network namespace and stand-in images built locally under the stacks' real names
(tests/standins.py). The doctor runs inside the namespace, as a user would on the
host; HTTP and redis are asked from inside the namespace too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import infra_setup
from doctor_cli import DoctorRun, run_doctor
from infra import DockerHost, Netns
from standins import V1_IMAGES, V3_IMAGES, build_stack_images

LABEL = "org.shipyard-doctor.stack"
PASSWORD = "Zq7-very-secret-admin"


@pytest.fixture(scope="session")
def stack_images(docker_host: DockerHost) -> dict[str, str]:
    """Every stand-in, built once per session before any test's snapshot."""
    with infra_setup():
        infra_tools()
        return build_stack_images(
            docker_host.client,
            tuple(dict.fromkeys([*V1_IMAGES, *V3_IMAGES, "shipyard/agent:latest"])),
        )


def infra_tools() -> None:
    import infra

    infra.require_tools("redis-server", "busybox", "nsenter")


@pytest.fixture
def host(stack_images: dict[str, str], clean_docker_host: DockerHost) -> DockerHost:
    return clean_docker_host


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The doctor's config: state_dir in tmp, the machine's daemon.json kept out."""
    (tmp_path / "system-root").mkdir()
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"data-root": str(tmp_path / "system-root")}))
    path = tmp_path / "config.toml"
    path.write_text(
        f"[docker]\ndaemon_json = '{daemon_json}'\n"
        f"[stack]\nstate_dir = '{tmp_path / 'state'}'\n"
    )
    return path


def doctor(
    host: DockerHost, config: Path, *args: str, timeout: float = 180
) -> DoctorRun:
    return run_doctor(
        *args,
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
        timeout=timeout,
    )


def containers(host: DockerHost) -> dict[str, str]:
    """name -> id of every container (all states)."""
    return {c.name: c.id for c in host.client.containers.list(all=True)}


def in_netns(netns: Netns, code: str) -> str:
    done = subprocess.run(
        netns.nsenter_argv([sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def http_status(netns: Netns, port: int) -> str:
    return in_netns(
        netns,
        "import http.client as h; c = h.HTTPConnection('127.0.0.1', "
        f"{port}, timeout=5); c.request('GET', '/'); print(c.getresponse().status)",
    )


def redis_ping(netns: Netns, port: int = 6379) -> str:
    return in_netns(
        netns,
        "import socket; s = socket.create_connection(('127.0.0.1', "
        f"{port}), 5); s.sendall(b'PING\\r\\n'); print(s.recv(64).decode().strip())",
    )


# --- v1 and v3, whole ---------------------------------------------------------


def test_v1_deploys_answers_and_a_second_run_changes_nothing(host, config):
    first = doctor(host, config, "deploy", "--yes", "--admin-password", PASSWORD)
    assert first.code == 0, first.stdout + first.stderr
    assert "Shipyard Stack Deployed" in first.stdout
    assert "login as admin with the password you gave at http://" in first.stdout
    names = containers(host)
    assert set(names) == {
        "shipyard_redis",
        "shipyard_router",
        "shipyard_lb",
        "shipyard_db",
        "shipyard",
    }
    assert http_status(host.netns, 8000) == "200"
    assert http_status(host.netns, 80) == "200"
    assert redis_ping(host.netns) == "+PONG"
    ui = host.client.containers.get("shipyard")
    assert ui.labels[LABEL] == "v1"
    assert ui.labels["org.shipyard-doctor.service"] == "shipyard"
    env = dict(e.split("=", 1) for e in ui.attrs["Config"]["Env"])
    # Legacy link variables, by name on the stack's network, no bridge address.
    assert env["DB_PORT_5432_TCP_ADDR"] == "db"
    assert env["REDIS_PORT_6379_TCP_ADDR"] == "redis"
    assert (
        env["DB_ENV_DB_PASS"]
        == dict(
            e.split("=", 1)
            for e in host.client.containers.get("shipyard_db").attrs["Config"]["Env"]
        )["DB_PASS"]
    )
    assert (
        "run.sh app master-worker: db at db:5432, redis at redis" in ui.logs().decode()
    )

    second = doctor(host, config, "deploy", "--yes", "--admin-password", PASSWORD)
    assert second.code == 0, second.stdout + second.stderr
    assert "already deployed, nothing to do" in second.stdout
    assert containers(host) == names

    status = doctor(host, config, "status", "--json")
    assert status.code == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["state"] == "deployed"
    assert {s["container"]: s["ready"] for s in doc["services"] if s["id"]} == {
        n: True for n in names
    }
    for run in (first, second, status):
        assert PASSWORD not in run.stdout + run.stderr
        assert env["DB_ENV_DB_PASS"] not in run.stdout + run.stderr


def test_v3_deploys_with_the_ui_on_8080(host, config):
    run = doctor(host, config, "deploy", "--stack", "v3", "--yes")
    assert run.code == 0, run.stdout + run.stderr
    assert "Shipyard's 2014 default password" in run.stdout
    assert "warning: the admin password is Shipyard's 2014 default" in run.stdout
    assert http_status(host.netns, 8080) == "200"
    assert len([n for n in containers(host) if n.startswith("shipyard-")]) == 7
    again = doctor(host, config, "deploy", "--stack", "v3", "--yes")
    assert "already deployed, nothing to do" in again.stdout, again.stdout
