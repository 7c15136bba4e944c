"""Whole-process timings of shipyard-doctor on real test hosts, against `docker`.

Builds its hosts with tests/infra.py (a network namespace with its own dockerd and
the busybox stand-in image; nothing on this machine's own Docker or network) and
prints medians, ratios and per-check durations; it asserts nothing. Run as root:

    python3 benchmarks/hostbench.py startup        # --help, list vs python -c pass
    python3 benchmarks/hostbench.py phases         # imports and discovery, in-process
    python3 benchmarks/hostbench.py healthy        # full check vs docker info
    python3 benchmarks/hostbench.py containers     # 200 running containers
    python3 benchmarks/hostbench.py listeners      # 15,000 TCP listeners
    python3 benchmarks/hostbench.py all [--runs 7]
    python3 benchmarks/hostbench.py healthy --dev  # this venv's editable install

Every run uses the `shipyard-doctor` console script of a copy of this checkout that
scripts/install puts in a temporary venv (what a user runs; with --dev, this venv's
editable install, its bytecode compiled first as pip does at install). `docker info`
and the check run alternately, so a change in the machine's load hits both alike,
and the check's CPU time (user + system) is printed beside its wall time.

Goals (issue 12): full check <= 6x `docker info`; `list` <= 150 ms; `--help` <= 3x
`python -c pass`; with 200 containers full check <= 10x `docker info` and no check
over 500 ms; with 15,000 listeners no check errors or times out and ports <= 1 s.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import infra  # the test bed's builders, reused as they are

# What a user runs: the console script of a copy installed by scripts/install (set by
# use_installed_copy()), or with --dev this venv's (editable: its import hook adds
# ~14 ms to every start). PYTHON is the interpreter of the same venv.
PYTHON = sys.executable
_SCRIPT = Path(sys.executable).with_name("shipyard-doctor")
DOCTOR = (
    [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "shipyard_doctor"]
)
ROOT = Path(__file__).resolve().parents[1]
# An installed copy has its bytecode written by pip; an editable one gets it on first
# import, unless PYTHONDONTWRITEBYTECODE is set (then every changed module would be
# compiled on every run). prepare_bytecode() writes it; children get this env.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def use_installed_copy(prefix: Path) -> None:
    """Install this checkout with scripts/install into ``prefix`` (a venv from
    Debian's python3, as a user gets it) and measure that copy."""
    global PYTHON, DOCTOR
    log = prefix.with_suffix(".log")
    with log.open("w") as out:
        done = subprocess.run(
            [
                str(ROOT / "scripts" / "install"),
                *("--prefix", str(prefix / "venv")),
                *("--bin-dir", str(prefix / "bin")),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"scripts/install failed (see {log}); or measure with --dev")
    PYTHON = str(prefix / "venv" / "bin" / "python")
    DOCTOR = [str(prefix / "venv" / "bin" / "shipyard-doctor")]


def prepare_bytecode() -> None:
    """Compile the package like pip does at install, so runs measure imports of
    bytecode, not compilation."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import compileall, os, shipyard_doctor as p, shipyard_doctor.checks as c,"
            " shipyard_doctor.fixes as f\n"
            "for m in (p, c, f):\n"
            "    compileall.compile_dir(os.path.dirname(m.__file__), quiet=1)",
        ],
        env=ENV,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit("could not compile the package's bytecode")


def _timed(argv: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False, env=ENV)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def median_ms(argv: Sequence[str], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        subprocess.run(argv, capture_output=True, check=False, env=ENV)
    return statistics.median(_timed(argv)[0] for _ in range(runs)) * 1000


def paired_ms(
    base: Sequence[str], argv: Sequence[str], runs: int
) -> tuple[float, float, float]:
    """Median wall ms of ``base`` and of ``argv``, run alternately (so a change in
    the machine's load hits both alike), and the median CPU ms of ``argv``."""
    for command in (base, argv):
        subprocess.run(command, capture_output=True, check=False, env=ENV)
    base_ms, wall_ms, cpu_ms = [], [], []
    for _ in range(runs):
        base_ms.append(_timed(base)[0] * 1000)
        wall, cpu = _timed(argv)
        wall_ms.append(wall * 1000)
        cpu_ms.append(cpu * 1000)
    return (
        statistics.median(base_ms),
        statistics.median(wall_ms),
        statistics.median(cpu_ms),
    )


def check_json(argv: Sequence[str]) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=ENV)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def durations(doc: dict[str, Any]) -> str:
    items = sorted(doc["checks"], key=lambda c: -c["duration_ms"])
    return ", ".join(f"{c['id']} {c['duration_ms']} ms ({c['status']})" for c in items)


def row(name: str, value: str, goal: str = "", verdict: str = "") -> None:
    print(f"| {name} | {value} | {goal} | {verdict} |", flush=True)


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise SystemExit("needs the docker CLI (apt-get install docker.io)")
    return found


# --- benchmarks ------------------------------------------------------------------


_PHASES = """
import time
t0 = time.perf_counter()
import shipyard_doctor.cli
t1 = time.perf_counter()
from shipyard_doctor.registry import discover
discover()
t2 = time.perf_counter()
import importlib, pkgutil, shipyard_doctor.host as h
for m in pkgutil.iter_modules(h.__path__):
    importlib.import_module("shipyard_doctor.host." + m.name)
t3 = time.perf_counter()
import docker
t4 = time.perf_counter()
import psutil, rich.console
t5 = time.perf_counter()
marks = (t0, t1, t2, t3, t4, t5)
print(*(round(1000 * (b - a)) for a, b in zip(marks, marks[1:])))
"""


def phases(runs: int) -> None:
    """Where a run's time goes before any check runs (in-process, medians)."""
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [PYTHON, "-c", _PHASES],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        )
        samples.append([int(x) for x in done.stdout.split()])
    cli, found, hosts, sdk, rest = (
        statistics.median(s[i] for s in samples) for i in range(5)
    )
    row(
        "phases (in-process)",
        f"import cli {cli:.0f} ms; discover() {found:.0f} ms; every "
        f"doctor/host module {hosts:.0f} ms; import docker (fix, deploy, report "
        f"only) {sdk:.0f} ms; import psutil + rich {rest:.0f} ms",
    )


def startup(runs: int) -> None:
    base = median_ms([PYTHON, "-c", "pass"], runs)
    helped = median_ms([*DOCTOR, "check", "--help"], runs)
    listed = median_ms([*DOCTOR, "list"], runs)
    row("`python -c pass`", f"{base:.0f} ms")
    ratio = helped / base
    row(
        "`check --help`",
        f"{helped:.0f} ms ({ratio:.1f}x python)",
        "<= 3x",
        "ok" if ratio <= 3 else "MISS",
    )
    row("`list`", f"{listed:.0f} ms", "<= 150 ms", "ok" if listed <= 150 else "MISS")


def with_host(body: Callable[[infra.DockerHost], None]) -> None:
    infra.require_root()
    host = infra.DockerHost.start()
    try:
        body(host)
    finally:
        host.close()


def full_check(host: infra.DockerHost, runs: int, label: str, goal: float) -> None:
    info_argv = host.netns.nsenter_argv([docker_cli(), "-H", host.dockerd.url, "info"])
    argv = host.netns.nsenter_argv(
        [*DOCTOR, "check", "--json", "--docker-host", host.dockerd.url]
    )
    info, check, cpu = paired_ms(info_argv, argv, runs)
    ratio = check / info
    row(f"{label}: `docker info`", f"{info:.0f} ms")
    row(
        f"{label}: full `check --json`",
        f"{check:.0f} ms ({ratio:.1f}x docker info; CPU {cpu:.0f} ms)",
        f"<= {goal:g}x",
        "ok" if ratio <= goal else "MISS",
    )
    doc = check_json(argv)
    slow = [c for c in doc["checks"] if c["duration_ms"] > 500]
    row(
        f"{label}: per check",
        durations(doc),
        "none > 500 ms",
        "ok" if not slow else "MISS: " + ", ".join(c["id"] for c in slow),
    )


# Runs the check in-process and prints the modules it loaded that are not ours (the
# standard library's, and any third party's), just before the process would end.
_FOREIGN_MODULES = """
import contextlib, io, os, runpy, sys
before = set(sys.modules)
end = os._exit
def report(code):
    found = sorted(m for m in sys.modules if m not in before
                   and not m.startswith("shipyard_doctor"))
    os.write(2, ("\\nforeign: " + " ".join(found) + "\\n").encode())
    end(code)
os._exit = report
sys.argv = ["shipyard-doctor", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()):
    runpy.run_module("shipyard_doctor", run_name="__main__")
"""


def floor(host: infra.DockerHost, runs: int) -> None:
    """What no change to our own code can go below: the interpreter plus the
    standard-library (and third-party) modules a full check imports."""
    argv = [PYTHON, "-c", _FOREIGN_MODULES, "check", "--json"]
    argv += ["--docker-host", host.dockerd.url]
    done = subprocess.run(
        host.netns.nsenter_argv(argv), capture_output=True, text=True, env=ENV
    )
    listed = [ln for ln in done.stderr.splitlines() if ln.startswith("foreign: ")]
    if not listed:
        raise SystemExit(f"could not list the check's modules: {done.stderr}")
    modules = listed[-1].removeprefix("foreign: ").split()
    script = "import importlib\nfor m in %r:\n    importlib.import_module(m)\n"
    info_argv = host.netns.nsenter_argv([docker_cli(), "-H", host.dockerd.url, "info"])
    info, imports, _ = paired_ms(info_argv, [PYTHON, "-c", script % modules], runs)
    row(
        "healthy host: floor",
        f"{imports:.0f} ms ({imports / info:.1f}x docker info {info:.0f} ms): the "
        f"interpreter and the {len(modules)} standard-library modules a full check "
        "imports, none of ours",
    )


def healthy(runs: int) -> None:
    def body(host: infra.DockerHost) -> None:
        full_check(host, runs, "healthy host", 6)
        floor(host, runs)

    with_host(body)


def containers(runs: int, count: int = 200) -> None:
    def body(host: infra.DockerHost) -> None:
        started = time.monotonic()
        for n in range(count):
            host.client.containers.run(
                host.image, ["sleep", "3600"], name=f"bench{n}", detach=True
            )
        print(
            f"(started {count} containers in {time.monotonic() - started:.0f} s)",
            file=sys.stderr,
        )
        ps = median_ms(
            host.netns.nsenter_argv([docker_cli(), "-H", host.dockerd.url, "ps"]), runs
        )
        row(f"{count} containers: `docker ps`", f"{ps:.0f} ms")
        full_check(host, runs, f"{count} containers", 10)

    with_host(body)


_LISTENERS = """
import resource, socket, sys, time
count, first = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 100, count + 100))
held = []
for port in range(first, first + count):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    held.append(s)
print("ready", flush=True)
time.sleep(3600)
"""


def listeners(runs: int, count: int = 15_000) -> None:
    infra.require_root()
    netns = infra.Netns.create()
    proc = None
    try:
        proc = subprocess.Popen(
            netns.nsenter_argv([sys.executable, "-c", _LISTENERS, str(count), "10000"]),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        missing = "unix:///nonexistent/shipyard-doctor-bench.sock"
        for only in ("ports", "docker-tcp", None):
            argv = [*DOCTOR, "check", "--json", "--docker-host", missing]
            if only:
                argv += ["--only", only]
            argv = netns.nsenter_argv(argv)
            total = median_ms(argv, runs, warmup=0)
            doc = check_json(argv)
            errors = [c for c in doc["checks"] if c["status"] == "error"]
            which = f"--only {only}" if only else "(all)"
            label = f"{count} listeners: check {which}"
            ports = next((c for c in doc["checks"] if c["id"] == "ports"), None)
            goal, verdict = "no errors", "ok" if not errors else "MISS"
            if only == "ports" and ports is not None:
                goal = "ports <= 1 s, no errors"
                if ports["duration_ms"] > 1000:
                    verdict = "MISS"
            row(
                label,
                f"{total:.0f} ms; {durations(doc)}"
                + "".join(f"; {c['id']}: {c['summary']}" for c in errors),
                goal,
                verdict,
            )
    finally:
        if proc is not None:
            infra.stop_process(proc)
        netns.delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "which",
        choices=["startup", "phases", "healthy", "containers", "listeners", "all"],
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--dev",
        action="store_true",
        help="measure this venv's (editable) install instead of an installed copy",
    )
    args = parser.parse_args()
    if args.dev:
        prepare_bytecode()
        print(f"measuring the editable install of {sys.prefix}", flush=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="hostbench-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        use_installed_copy(scratch / "install")
        print(f"measuring a copy installed by scripts/install: {DOCTOR[0]}", flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before: {load} on {os.cpu_count()} CPUs", flush=True)
    print("| what | measured (median) | goal | |\n|---|---|---|---|", flush=True)
    chosen = ["startup", "phases", "healthy", "containers", "listeners"]
    for name in chosen if args.which == "all" else [args.which]:
        globals()[name](args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
