"""The docker-state fix applied for real on the session's test dockerd: a half-deployed
Shipyard v1 of stand-in containers is removed through the Docker API (verified by
the check and by the API listing none of them), and a docker CLI pointed at another
daemon (DOCKER_HOST, and a docker context made by the real docker CLI) gets the
commands that point it back, with nothing applied."""

from __future__ import annotations

import subprocess
from pathlib import Path

from doctor_cli import run_doctor
from test_docker_state import docker_cli, half_deploy, make_context, system_daemon_json

__all__ = ["docker_cli"]  # the real docker CLI fixture, requested by name below


def fix_config(tmp_path: Path) -> Path:
    """The docker-state test config (an empty system data-root) plus a journal in a
    temp dir."""
    config = system_daemon_json(tmp_path)
    with config.open("a") as out:
        out.write(f"[fix]\njournal_dir = '{tmp_path / 'journal'}'\n")
    return config


def docker_state(host, config: Path, *extra: str, **env: str) -> dict:
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-state",
        *extra,
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
        env=env,
    )
    assert run.stdout, run.stderr
    return run.doc


def test_half_deployed_stack_is_removed(clean_docker_host, tmp_path):
    host = clean_docker_host
    router = half_deploy(host)
    redis = host.client.containers.get("shipyard_redis")
    unrelated = host.client.containers.create(host.image, ["true"], name="my-app")
    config = fix_config(tmp_path)
    doc = docker_state(host, config, "--fix", "--yes")
    assert doc["checks"][-1]["status"] == "failure"
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "applied", fix
    assert fix["recheck"]["status"] == "ok", fix["recheck"]
    assert fix["recheck"]["summary"].endswith("Shipyard v1 is not deployed")
    plan = fix["plan"]
    assert plan["summary"] == (  # the API lists the newest container first
        "remove the leftovers of the half-deployed Shipyard v1 (shipyard_router, "
        "shipyard_redis), then deploy again"
    )
    assert sorted(plan["steps"]) == [
        f"remove container shipyard_redis (image shipyard/redis, running, id "
        f"{redis.short_id})",
        f"remove container shipyard_router (image shipyard/router, exited, id "
        f"{router.short_id})",
    ]
    assert plan["notes"] == ["deploy Shipyard again afterwards"]
    # The real effect: the Docker API lists none of the stack's containers; the
    # user's own container is still there.
    left = [c.name for c in host.client.containers.list(all=True)]
    assert left == [unrelated.name]
    # Undo cannot bring a container back, and says so.
    undo = run_doctor("undo", config=config)
    assert undo.code == 0, undo.stderr
    assert "not reversible: remove container shipyard_redis (image" in undo.stdout
    # A second run: the check passes, nothing is offered.
    again = docker_state(host, config, "--fix", "--yes")
    assert again["fixes"] == [] and again["checks"][-1]["status"] == "ok"


def test_client_pointed_elsewhere_gets_commands_only(
    clean_docker_host, docker_cli, tmp_path
):
    host = clean_docker_host
    home = tmp_path / "home"
    home.mkdir()
    other = f"unix://{tmp_path / 'old-daemon.sock'}"  # nothing answers there
    make_context(docker_cli, home, "this-host", host.dockerd.url)
    make_context(docker_cli, home, "old-host", other)  # the current one
    config = fix_config(tmp_path)
    doc = docker_state(
        host, config, "--fix", "--yes", DOCKER_HOST=other, HOME=str(home)
    )
    check = doc["checks"][-1]
    assert check["status"] == "warning", check
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "nothing-to-do", fix
    assert fix["plan"]["steps"] == []
    assert fix["plan"]["manual"] == [
        f"export DOCKER_HOST={host.dockerd.url}",
        "docker context use this-host",
    ]
    assert fix["plan"]["summary"] == (
        f"point the docker CLI back at {host.dockerd.url}: run the commands below in "
        "the shell that runs docker and the deploy"
    )
    assert fix["journal_run"] is None and not (tmp_path / "journal").exists()
    # Followed, the commands make the check pass: DOCKER_HOST exported as told,
    # and `docker context use this-host` run by the real CLI.
    subprocess.run(
        [docker_cli, "context", "use", "this-host"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    after = docker_state(host, config, DOCKER_HOST=host.dockerd.url, HOME=str(home))
    assert after["checks"][-1]["status"] == "ok", after["checks"][-1]


def test_the_default_socket_means_unset_and_the_default_context(tmp_path):
    # Planning reads only the check's data and the client's files: real context
    # files written by the docker CLI are in the test above; here none exist.
    from shipyard_doctor.config import Config
    from shipyard_doctor.fixes.docker_state import client_commands
    from shipyard_doctor.host.gateway import Host

    host = Host(Config(), {"HOME": str(tmp_path)})
    clients = [
        {"kind": "DOCKER_HOST", "url": "tcp://10.0.0.5:2375", "elsewhere": True},
        {"kind": "context", "url": "tcp://10.0.0.5:2375", "elsewhere": True},
        {"kind": "context", "url": "unix:///run/docker.sock", "elsewhere": False},
    ]
    assert client_commands(clients, "unix:///var/run/docker.sock", host) == [
        "unset DOCKER_HOST",
        "docker context use default",
    ]
    elsewhere = "tcp://127.0.0.1:4243"
    assert client_commands(clients[1:2], elsewhere, host) == [
        f"docker context create shipyard-host --docker host={elsewhere}",
        "docker context use shipyard-host",
    ]
    env_host = Host(Config(), {"HOME": str(tmp_path), "DOCKER_CONTEXT": "old"})
    assert client_commands(clients[1:2], "unix:///var/run/docker.sock", env_host) == [
        "export DOCKER_CONTEXT=default"
    ]
