"""How long does `shipyard-doctor report` take, and how big is what it writes, for the
v1 stack with logs? Printed, not asserted (goal: <= 3 s and <= 1 MiB with the default
log caps).

As root: starts a dockerd in a throwaway network namespace (tests/infra.py), runs the
v1 stack's stand-in containers (busybox images tagged like Shipyard's, each having
written LINES log lines of ~120 characters), then times `report` in each format:

    python3 benchmarks/report.py [--runs 5] [--lines 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SERVICES = (
    ("redis", 6379),
    ("db", None),
    ("router", None),
    ("lb", 80),
    ("shipyard", 8000),
)


def deploy(host, lines: int) -> None:  # type: ignore[no-untyped-def]
    image = host.client.images.get(host.image)
    script = (
        f'i=0; while [ $i -lt {lines} ]; do echo "$(date) worker[$$]: request $i '
        'GET /api/containers/ 200 OK in 12ms from 172.17.0.1 user=admin"; '
        "i=$((i+1)); done; exec sleep 3600"
    )
    for service, port in SERVICES:
        image.tag(f"shipyard/{service}", "latest")
        name = "shipyard" if service == "shipyard" else f"shipyard_{service}"
        host.client.containers.run(
            f"shipyard/{service}:latest",
            ["sh", "-c", script],
            name=name,
            detach=True,
            environment={"ADMIN_PASS": "bench-admin-secret", "DB_PASS": "bench-db"},
            ports={f"{port}/tcp": port} if port else {},
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = host.client.api.logs("shipyard", tail=1)
        if logs and b"request" in logs and str(lines - 1).encode() in logs:
            return
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=5000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(
            "run as root: it starts a dockerd in a network namespace", file=sys.stderr
        )
        return 2
    from infra import DockerHost

    host = DockerHost.start()
    try:
        deploy(host, args.lines)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.toml"
            config.write_text(f'[docker]\nhost = "{host.dockerd.url}"\n')
            print(
                f"v1 stack, 5 containers x {args.lines} log lines; "
                f"median of {args.runs} runs"
            )
            print(f"{'format':<8} {'median s':>9} {'bytes':>10}")
            for fmt, suffix in (("md", "md"), ("json", "json"), ("tar", "tar.gz")):
                out = Path(tmp) / f"r.{suffix}"
                argv = host.netns.nsenter_argv(
                    [
                        sys.executable,
                        "-m",
                        "shipyard_doctor",
                        "report",
                        "--config",
                        str(config),
                        "--format",
                        fmt,
                        "-o",
                        str(out),
                    ]
                )
                samples = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    subprocess.run(argv, capture_output=True, check=True)
                    samples.append(time.perf_counter() - started)
                size = out.stat().st_size
                print(f"{fmt:<8} {statistics.median(samples):>9.2f} {size:>10,}")
    finally:
        host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
