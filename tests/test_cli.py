"""The CLI's contract: help, version, ids, output modes and exit codes."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest
from shipyard_doctor import __version__
from shipyard_doctor.cli import main
from shipyard_doctor.context import Environment
from shipyard_doctor.model import CheckRun, Report, Result
from shipyard_doctor.render import console, text


def run_cli(argv, environ=None, tty=False):
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ=environ or {}, stdout_isatty=tty)
    return main(argv, env), out.getvalue(), err.getvalue()


def test_version_and_help():
    done = subprocess.run(
        [sys.executable, "-m", "shipyard_doctor", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"shipyard-doctor {__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "shipyard_doctor", "check", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    for word in (
        "--only",
        "--skip",
        "--ignore",
        "--json",
        "--docker-host",
        "examples:",
        "exit codes:",
    ):
        assert word in done.stdout


def test_help_does_not_import_heavy_modules():
    # Help really runs (printed into a buffer); then nothing heavy is loaded.
    code = (
        "import contextlib, io, sys\n"
        "from shipyard_doctor.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    codes = [main(['--help']), main(['check', '--help'])]\n"
        "assert codes == [0, 0], codes\n"
        "assert 'examples:' in out.getvalue() and '--only' in out.getvalue()\n"
        # The commands' dataclasses and even typing load once a command runs.
        "heavy = ('docker', 'rich', 'psutil', 'requests', 'dataclasses', 'typing',\n"
        "         'shutil')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_command_prints_help_and_exits_2():
    code, out, _ = run_cli([])
    assert code == 2 and "check" in out and "list" in out


def test_unknown_check_id_is_exit_2_naming_the_known_ones():
    from shipyard_doctor.registry import discover

    code, out, err = run_cli(["check", "--only", "ports,nope"])
    assert code == 2 and out == ""
    known = ", ".join(discover().known_check_ids)
    assert "docker-daemon, " in known
    assert err.strip() == (
        f"shipyard-doctor: error: unknown check id 'nope' in --only (known: {known})"
    )


def test_list_plain_and_json():
    code, out, _ = run_cli(["list"])
    assert code == 0
    assert "docker-daemon" in out and "Shipyard's host ports are free" in out
    code, out, _ = run_cli(["list", "--json"])
    doc = json.loads(out)
    assert {c["id"] for c in doc["checks"]} >= {"ports", "docker-daemon"}
    assert doc["broken"] == []


def sample_report():
    runs = (
        CheckRun(
            "docker-daemon",
            "Docker daemon answers",
            "docker",
            Result.ok("Docker 28.2 answers", details=["endpoint: x"]),
        ),
        CheckRun(
            "ports",
            "Shipyard's host ports are free",
            "network",
            Result.failure(
                "port 8000 already in use",
                details=["8000/tcp (shipyard): python3 (pid 7)"],
                hints=["stop it"],
                fixes=("ports",),
            ),
        ),
        CheckRun("extra", "Extra", "network", Result.warning("meh"), ignored=True),
    )
    host = {
        "hostname": "h",
        "os": "Debian",
        "kernel": "6.1",
        "user": "root",
        "docker_host": "unix:///var/run/docker.sock",
        "stack": "v1",
    }
    return Report("9.9", host, runs)


def test_plain_text_rendering():
    out = io.StringIO()
    text.render_report(sample_report(), out)
    lines = out.getvalue().splitlines()
    assert "  ok       docker-daemon: Docker 28.2 answers" in lines
    assert "  FAILURE  ports: port 8000 already in use" in lines
    assert "             -> stop it" in lines
    assert "             fix: shipyard-doctor fix ports" in lines
    assert "endpoint: x" not in out.getvalue()  # ok evidence only with -v
    assert lines[-3] == "3 checks: 1 ok, 1 warning, 1 failure — problems found"
    assert " ".join(lines[-2:]) == (
        "1 problem has an automatic fix: shipyard-doctor check --fix "
        "(shows each plan first)"
    )


def test_rich_rendering_fixed_width():
    out = io.StringIO()
    console.render_report(sample_report(), out, verbose=True, width=100)
    rendered = out.getvalue()
    assert "✓ Docker daemon answers (docker-daemon): Docker 28.2 answers" in rendered
    assert (
        "✗ Shipyard's host ports are free (ports): port 8000 already in use" in rendered
    )
    assert "→ stop it" in rendered
    assert "endpoint: x" in rendered  # verbose shows evidence of ok checks too
    assert "[ignored]" in rendered


def test_tty_gets_rich_output_unless_no_color():
    from shipyard_doctor.registry import discover

    _, rich_out, _ = run_cli(["list"], tty=True)
    _, no_color_out, _ = run_cli(["list"], environ={"NO_COLOR": "1"}, tty=True)
    _, piped_out, _ = run_cli(["list"], tty=False)
    # Plain text is the same with NO_COLOR on a terminal as into a pipe.
    assert no_color_out == piped_out
    assert piped_out.splitlines()[0].split() == ["ID", "CATEGORY", "TITLE", "FIXES"]
    assert rich_out != piped_out and "ID " not in rich_out
    for check_id in discover().known_check_ids:
        assert check_id in rich_out and check_id in piped_out


def test_json_document_schema(tmp_path):
    # A Docker endpoint that does not exist: the run still yields a full document.
    code, out, _ = run_cli(
        [
            "check",
            "--json",
            "--only",
            "docker-daemon",
            "--docker-host",
            f"unix://{tmp_path}/missing.sock",
        ]
    )
    doc = json.loads(out)
    assert code == 1
    assert set(doc) == {"schema", "version", "host", "checks", "counts", "ok"}
    assert doc["schema"] == 1 and doc["version"] == __version__ and doc["ok"] is False
    (check,) = doc["checks"]
    assert {"id", "title", "status", "summary", "details", "hints", "fixes"} <= set(
        check
    )
    assert check["status"] == "failure"
    assert doc["counts"]["failure"] == 1
    code, out, _ = run_cli(
        [
            "check",
            "--json",
            "--only",
            "docker-daemon",
            "--ignore",
            "docker-daemon",
            "--docker-host",
            f"unix://{tmp_path}/missing.sock",
        ]
    )
    assert code == 0 and json.loads(out)["checks"][0]["ignored"] is True


def test_the_process_ends_after_exit_handlers_with_its_output_complete():
    # __main__ ends the process with os._exit after the command (no interpreter
    # teardown): exit handlers must still run, and every byte written must arrive.
    program = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        "sys.argv = ['shipyard-doctor', *sys.argv[1:]]\n"
        "from shipyard_doctor.__main__ import run\n"
        "run()\n"
    )
    for args, code in ((["list", "--json"], 0), (["check", "--only", "nope"], 2)):
        done = subprocess.run(
            [sys.executable, "-c", program, *args], capture_output=True, text=True
        )
        assert done.returncode == code, done.stderr
        assert done.stderr.endswith("exit handler ran\n"), done.stderr
        if code == 0:
            listed = json.loads(done.stdout)  # complete, or this raises
            assert {c["id"] for c in listed["checks"]} >= {"ports", "docker-tcp"}


def test_short_commands_run_without_the_cyclic_collector_long_ones_with_it():
    # __main__ starts with gc disabled (start-up speed); cli.main re-enables it
    # for every command that is not in SHORT_COMMANDS.
    program = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('gc', gc.isenabled(), file=sys.stderr))\n"
        "sys.argv = ['shipyard-doctor', *sys.argv[1:]]\n"
        "from shipyard_doctor.__main__ import run\n"
        "run()\n"
    )
    missing = "unix:///nonexistent/shipyard-doctor-test.sock"
    for args, enabled in (
        (["list"], False),
        (["status", "--docker-host", missing], True),
        (["undo", "--list", "--config", "/nonexistent/config.toml"], True),
    ):
        done = subprocess.run(
            [sys.executable, "-c", program, *args], capture_output=True, text=True
        )
        assert done.stderr.endswith(f"gc {enabled}\n"), (args, done.stderr)


WIDTHS = """
import shutil, sys
from shipyard_doctor.helpformat import terminal_columns
sys.stderr.write(f"{terminal_columns()} {shutil.get_terminal_size().columns}")
"""


@pytest.mark.parametrize("columns", [None, "37", "200", "0", "-5", "wide"])
@pytest.mark.parametrize("on_terminal", [False, True])
def test_help_is_as_wide_as_argparse_would_make_it(columns, on_terminal):
    # The formatter finds the width without shutil; the same answer as shutil, from
    # COLUMNS, else the terminal (a real pty of 123 columns), else 80.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 123, 0, 0))
    try:
        done = subprocess.run(
            [sys.executable, "-c", WIDTHS],
            stdout=secondary if on_terminal else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    ours, theirs = done.stderr.split()
    assert ours == theirs, done.stderr
    expected = {None: "123", "0": "123", "-5": "123", "wide": "123"}.get(
        columns, columns
    )
    assert ours == (expected if on_terminal or expected != "123" else "80")
