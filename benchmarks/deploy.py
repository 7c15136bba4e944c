"""How long does `shipyard-doctor deploy` take against a plain docker-CLI script?

Both create Shipyard v1 from the same local stand-in images (tests/standins.py) on a
throwaway dockerd in its own network namespace (tests/infra.py): the same network,
volume and five containers with the same ports, environment and restart policy, in
the same order, each awaited with the same readiness probe before the next starts.
The doctor's time includes everything a user waits for (its preflight checks and
plan); the stack is removed, untimed, between runs. Prints the median of N runs and
the ratio (goal <= 1.2x). Run as root:

    python3 benchmarks/deploy.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

NETWORK = "shipyard-v1"
# name, image, publish, env, extra `docker run` args, probe (kind, port)
V1 = (
    ("shipyard_redis", "shipyard/redis", ["-p", "6379:6379"], {}, [], ("redis", 6379)),
    (
        "shipyard_router",
        "shipyard/router",
        ["-p", "80"],
        {"REDIS_PORT_6379_TCP_ADDR": "redis", "REDIS_PORT_6379_TCP_PORT": "6379"},
        ["--network-alias", "app_router"],
        ("tcp", 80),
    ),
    (
        "shipyard_lb",
        "shipyard/lb",
        ["-p", "80:80"],
        {
            "REDIS_PORT_6379_TCP_ADDR": "redis",
            "APP_ROUTER_PORT_80_TCP_ADDR": "app_router",
        },
        [],
        ("http", 80),
    ),
    (
        "shipyard_db",
        "shipyard/db",
        ["-p", "5432"],
        {"DB_NAME": "shipyard", "DB_USER": "shipyard", "DB_PASS": "benchmark"},
        ["--network-alias", "db", "-v", "shipyard_db_data:/var/lib/postgresql"],
        ("tcp", 5432),
    ),
    (
        "shipyard",
        "shipyard/shipyard",
        ["-p", "8000:8000"],
        {
            "DB_PORT_5432_TCP_ADDR": "db",
            "DB_ENV_DB_PASS": "benchmark",
            "REDIS_PORT_6379_TCP_ADDR": "redis",
            "ADMIN_PASS": "benchmark",
        },
        ["--entrypoint", "/app/.docker/run.sh"],
        ("http", 8000),
    ),
)
COMMANDS = {"shipyard": ["app", "master-worker"]}


def cli_script(docker: str, url: str) -> None:
    """The plain script: docker CLI calls in sequence, probes in between."""
    from shipyard_doctor.deploy.probes import attempt
    from shipyard_doctor.stacks import Probe

    def run(*argv: str) -> str:
        return subprocess.run(
            [docker, "-H", url, *argv], capture_output=True, text=True, check=True
        ).stdout.strip()

    run("network", "create", NETWORK)
    run("volume", "create", "shipyard_db_data")
    for name, image, publish, env, extra, (kind, port) in V1:
        envs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        alias = ["--network-alias", name.removeprefix("shipyard_")]
        run(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            NETWORK,
            *alias,
            *publish,
            *envs,
            *extra,
            "--restart",
            "unless-stopped",
            image,
            *COMMANDS.get(name, []),
        )
        ip = run(
            "inspect",
            "-f",
            '{{(index .NetworkSettings.Networks "' + NETWORK + '").IPAddress}}',
            name,
        )
        deadline = time.monotonic() + 60
        while not attempt(Probe(kind, port, "/"), ip, port):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} not ready")
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-script", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    docker = shutil.which("docker") or "docker"
    if args.cli_script:
        cli_script(docker, args.cli_script)
        return 0
    if os.geteuid() != 0:
        print("run as root: it starts a dockerd in a network namespace")
        return 2

    from infra import DockerHost
    from standins import V1_IMAGES, build_stack_images

    host = DockerHost.start()
    work = Path(tempfile.mkdtemp(prefix="sdbench-"))
    try:
        build_stack_images(host.client, V1_IMAGES)
        config = work / "config.toml"
        config.write_text(f"[stack]\nstate_dir = '{work / 'state'}'\n")
        env = {"PATH": os.environ["PATH"], "NO_COLOR": "1", "LANG": "C.UTF-8"}
        doctor = [sys.executable, "-m", "shipyard_doctor"]
        common = ["--docker-host", host.dockerd.url, "--config", str(config)]
        cases = {
            "shipyard-doctor deploy": [*doctor, "deploy", "--yes", *common],
            "docker CLI script": [
                sys.executable,
                __file__,
                "--cli-script",
                host.dockerd.url,
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                started = time.perf_counter()
                done = subprocess.run(
                    host.netns.nsenter_argv(argv),
                    env=env,
                    capture_output=True,
                    text=True,
                )
                elapsed = time.perf_counter() - started
                if done.returncode != 0:
                    print(f"{name} failed:\n{done.stdout}{done.stderr}")
                    return 1
                times[name].append(elapsed)
                subprocess.run(
                    host.netns.nsenter_argv(
                        [*doctor, "undeploy", "--yes", "--volumes", *common]
                    ),
                    env=env,
                    capture_output=True,
                    check=False,
                )
                for c in host.client.containers.list(all=True):
                    c.remove(force=True, v=True)
                for n in host.client.networks.list(names=[NETWORK]):
                    n.remove()
                for v in host.client.volumes.list():
                    v.remove(force=True)
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, median in medians.items():
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            print(f"{name:<24} median {median:6.2f} s  ({runs})")
        ratio = medians["shipyard-doctor deploy"] / medians["docker CLI script"]
        print(f"ratio {ratio:.2f}x (goal <= 1.2x), median of {args.runs}")
        return 0
    finally:
        host.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
