"""How fast does shipyard-doctor answer, and how much memory does a run take?

Prints the median wall time of N runs of a few commands, and the peak resident memory
of a full `check`. `--help` must stay fast (no docker/rich import on that path); a
full `check` is bounded by the slowest check. Run as root to measure `check` inside a
throwaway network namespace (so its bind tests never touch this host's ports):

    python3 benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def timed(argv: list[str], runs: int) -> tuple[float, int]:
    """Median wall seconds over ``runs``, and the max peak RSS (KiB) of a child."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        samples.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return statistics.median(samples), peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    doctor = [sys.executable, "-m", "shipyard_doctor"]
    missing = f"unix://{tempfile.gettempdir()}/no-such-docker-{uuid.uuid4().hex}.sock"
    cases = {
        "--version": [*doctor, "--version"],
        "--help": [*doctor, "check", "--help"],
        "list": [*doctor, "list"],
    }
    namespace = None
    if os.geteuid() == 0:
        namespace = f"sdbench-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        cases["check (all, no Docker)"] = [
            "nsenter",
            f"--net=/var/run/netns/{namespace}",
            *doctor,
            "check",
            "--json",
            "--docker-host",
            missing,
        ]
    try:
        header = f"{'command':<28} {'median ms':>10} {'peak RSS MiB':>13}"
        print(f"{header}  ({args.runs} runs each)")
        for name, argv in cases.items():
            median, _ = timed(argv, args.runs)
            print(f"{name:<28} {median * 1000:>10.0f}")
        _, peak = timed(cases.get("check (all, no Docker)", cases["list"]), 1)
        print(f"{'peak RSS of any run':<28} {'':>10} {peak / 1024:>13.1f}")
    finally:
        if namespace:
            subprocess.run(["ip", "netns", "del", namespace], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
