"""The real pull path of `deploy`: Debian's docker-registry serving on loopback inside
a test namespace, the stand-ins pushed to it and deleted locally, then the deploy
pulling them through --image-map (progress drawn on a pty) and through
[stack.images] in the configuration (plain lines)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import infra_fixture, infra_setup
from doctor_cli import run_doctor
from infra import (
    DockerHost,
    ManagedProcess,
    require_tools,
    stop_process,
    wait_listening,
)
from standins import V1_IMAGES, build_stack_images

REGISTRY = "127.0.0.1:5000"


@infra_fixture()
def registry_host(tmp_path: Path) -> Iterator[tuple[DockerHost, ManagedProcess]]:
    """A fresh docker host (its images are deleted here) and a registry beside it."""
    with infra_setup():
        registry = require_tools(
            "busybox", "redis-server", "nsenter", "docker-registry"
        )
        host = DockerHost.start()
    proc: ManagedProcess | None = None
    try:
        conf = tmp_path / "registry.yml"
        conf.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp_path / 'registry'}\n"
            f"http:\n  addr: {REGISTRY}\n"
        )
        proc = host.netns.spawn(
            [registry["docker-registry"], "serve", str(conf)],
            log_path=tmp_path / "registry.log",
        )
        wait_listening(proc, 5000, "127.0.0.1")
        yield host, proc
    finally:
        if proc is not None:
            stop_process(proc)
        host.close()


def push_and_forget(host: DockerHost) -> None:
    """Push every v1 stand-in to the registry, then delete it locally."""
    client = host.client
    build_stack_images(client, V1_IMAGES)
    for image in V1_IMAGES:
        repo, tag = image.rsplit(":", 1)
        client.images.get(image).tag(f"{REGISTRY}/{repo}", tag)
        for line in client.images.push(
            f"{REGISTRY}/{repo}", tag, stream=True, decode=True
        ):
            assert "error" not in line, line
    for image in V1_IMAGES:
        repo, _ = image.rsplit(":", 1)
        client.images.remove(image, force=True)
        client.images.remove(f"{REGISTRY}/{image}", force=True)
    client.images.prune(filters={"dangling": False})
    assert not any(
        t.startswith(("shipyard/", REGISTRY))
        for i in client.images.list()
        for t in i.tags
    )


def on_pty(
    argv: list[str], env: dict[str, str], timeout: float = 300
) -> tuple[int, str]:
    """Run argv with stdout and stderr on a pseudo-terminal; return (code, output)."""
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env
    ) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=timeout)
    os.close(primary)
    return code, b"".join(chunks).decode("utf-8", "replace")


def write_config(tmp_path: Path, images: dict[str, str] | None = None) -> Path:
    (tmp_path / "system-root").mkdir(exist_ok=True)
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"data-root": str(tmp_path / "system-root")}))
    text = (
        f"[docker]\ndaemon_json = '{daemon_json}'\n"
        f"[stack]\nstate_dir = '{tmp_path / 'state'}'\n"
    )
    if images:
        text += "[stack.images]\n" + "".join(
            f'"{k}" = "{v}"\n' for k, v in images.items()
        )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_deploy_pulls_through_image_map_and_stack_images(registry_host, tmp_path):
    host, _ = registry_host
    push_and_forget(host)
    mapping = {i.rsplit(":", 1)[0]: f"{REGISTRY}/{i}" for i in V1_IMAGES}

    # 1. --image-map, on a terminal: rich progress, one bar per layer.
    config = write_config(tmp_path)
    argv = [sys.executable, "-m", "shipyard_doctor", "deploy", "--yes"]
    argv += [a for k, v in mapping.items() for a in ("--image-map", f"{k}={v}")]
    argv += ["--docker-host", host.dockerd.url, "--config", str(config)]
    env = {
        "PATH": os.environ["PATH"],
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "COLUMNS": "120",
    }
    code, output = on_pty(host.netns.nsenter_argv(argv), env)
    assert code == 0, output
    for image in mapping.values():
        assert f"pulling {image}" in output
        assert f"pulled {image}" in output
    assert "Pull complete" in output
    assert "\x1b[" in output  # drawn by rich, not plain lines
    assert "Shipyard Stack Deployed" in output
    running = {c.name: c.image.tags for c in host.client.containers.list()}
    assert running["shipyard_redis"] == [mapping["shipyard/redis"]]

    # 2. [stack.images] in the configuration, no terminal: plain lines.
    undeploy = run_doctor(
        "undeploy",
        "--yes",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
    )
    assert undeploy.code == 0, undeploy.stdout + undeploy.stderr
    for image in mapping.values():
        host.client.images.remove(image, force=True)
    config = write_config(tmp_path, mapping)
    run = run_doctor(
        "deploy",
        "--yes",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
        timeout=300,
    )
    assert run.code == 0, run.stdout + run.stderr
    assert (
        f"  image:    shipyard/db:latest -> {REGISTRY}/shipyard/db:latest" in run.stdout
    )
    assert f"  pulling {REGISTRY}/shipyard/db:latest" in run.stdout
    assert ": Pull complete" in run.stdout
    assert "\x1b[" not in run.stdout


def test_a_pull_that_fails_names_the_image_and_creates_nothing(registry_host, tmp_path):
    host, _ = registry_host
    config = write_config(tmp_path)
    run = run_doctor(
        "deploy",
        "--yes",
        "--image-map",
        f"shipyard/redis={REGISTRY}/nothing/here",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
    )
    assert run.code == 1, run.stdout + run.stderr
    assert f"deploy failed: cannot pull {REGISTRY}/nothing/here:latest: " in run.stdout
    assert "nothing had been created; nothing was changed" in run.stdout
    assert host.client.containers.list(all=True) == []
    assert not [n for n in host.client.networks.list() if n.name.startswith("shipyard")]
