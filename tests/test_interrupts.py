"""Ctrl-C (a real SIGINT to a real `python -m shipyard_doctor` process; SIGTERM too
for fix) at several moments of fix and report: exit 130, one line, no traceback,
nothing half-written.
(check: test_hardening.py; deploy: test_deploy.py; a fix stopped while applying:
test_fix_interrupt.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import infra
import pytest

INTERRUPTED = "shipyard-doctor: interrupted\n"
# While the program is still starting it ends itself by the signal (a shell
# shows 130 too); afterwards it exits 130. Either way: this one line.
CTRL_C = {130, -signal.SIGINT}


def config_in(tmp_path: Path, docker_timeout: float = 1) -> Path:
    """Every path the doctor reads or writes in tmp_path."""
    (tmp_path / "units").mkdir(exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f"[checks]\ntimeout = 4\n[docker]\ntimeout = {docker_timeout}\n"
        f'daemon_json = "{tmp_path}/daemon.json"\n'
        f'[host]\nsystemd_dirs = ["{tmp_path}/units"]\n'
        f'lease_dirs = ["{tmp_path}/leases"]\nbin_dirs = ["{tmp_path}"]\n'
        f'[fix]\njournal_dir = "{tmp_path}/journal"\n'
    )
    return config


def interrupt_after(
    argv: list[str], delay: float, signum: int = signal.SIGINT
) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard_doctor", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "LANG": "C.UTF-8"},
    )
    try:
        time.sleep(delay)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_fix_interrupted_while_its_checks_run_leaves_no_journal(tmp_path, signum):
    # A hung daemon keeps the checks running for a second: the signal lands there.
    config = config_in(tmp_path, docker_timeout=3)
    with infra.HangingUnixServer() as hung:
        for delay in (0.6, 1.2, 2.0):
            argv = ["fix", "docker-state", "--yes", "--json", "--docker-host"]
            argv += [hung.url, "--config", str(config)]
            code, out, err = interrupt_after(argv, delay, signum)
            assert (code, err) == (130, INTERRUPTED), (delay, code, out, err)
            assert out == "", out  # no JSON document begun
            assert not (tmp_path / "journal").exists(), delay


def test_report_interrupted_at_any_moment_writes_nothing_or_everything(tmp_path):
    """From the checks to the last write: either the whole report (and its
    pseudonym map) or nothing -- no partial file, no temp file, no lone map."""
    config = config_in(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    interrupted = 0
    with infra.HangingUnixServer() as hung:
        for step in range(12):
            fmt = ("md", "tar", "json")[step % 3]
            target = out_dir / f"report.{'tar.gz' if fmt == 'tar' else fmt}"
            argv = ["report", "--format", fmt, "-o", str(target), "--pseudonymize"]
            argv += ["--docker-host", hung.url, "--config", str(config)]
            code, out, err = interrupt_after(argv, 0.3 + step * 0.12)
            # It finished first (the signal may still end the exiting interpreter):
            # the report complete, and nothing else beside it.
            if code == 0 or "report written to" in out:
                assert sorted(p.name for p in out_dir.iterdir()) == sorted(
                    [target.name, f"{target.name}.pseudonyms.json"]
                )
                if fmt == "json":
                    json.loads(target.read_text())
                json.loads((out_dir / f"{target.name}.pseudonyms.json").read_text())
                for path in out_dir.iterdir():
                    path.unlink()
                continue
            interrupted += 1
            assert code in CTRL_C and err == INTERRUPTED, (step, code, out, err)
            assert list(out_dir.iterdir()) == [], step
    assert interrupted >= 4, "too few interrupts landed before the report was done"


def test_a_report_over_an_existing_file_is_replaced_whole(tmp_path):
    """The old report stays until the new one is complete; the new one is 0600."""
    target = tmp_path / "report.md"
    target.write_text("the previous report\n")
    target.chmod(0o644)
    argv = ["report", "-o", str(target), "--docker-host", f"unix://{tmp_path}/x"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard_doctor",
            *argv,
            "--config",
            str(config_in(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert target.read_text().startswith("# shipyard-doctor report")
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
