"""Every command on a host whose Docker is missing, refuses the user, or hangs: a clear
message, a documented exit code, no traceback, and no wait past the timeouts."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from doctor_cli import DoctorRun, run_doctor

COMMANDS = [
    ("check",),
    ("check", "--json"),
    ("fix", "docker-state", "--yes"),
    ("fix", "docker-tcp", "--dry-run"),
    ("undo",),
    ("undo", "--list"),
    ("list",),
    ("deploy", "--yes"),
    ("deploy", "--dry-run"),
    ("deploy", "--yes", "--force"),
    ("status",),
    ("status", "--json"),
    ("undeploy", "--yes"),
    ("report", "-o", "-"),
]
DOCUMENTED = {0, 1, 2, 3, 4, 130}
# README's tables: no daemon is a blocker for deploy (1), a stack that is not
# deployed for status (1), a daemon to ask first for undeploy (1); report is
# written whatever the checks found (0).
EXPECTED = {"deploy": 1, "status": 1, "undeploy": 1, "report": 0}


def config_in(tmp_path: Path) -> Path:
    """A config that keeps every path the doctor reads or writes in tmp_path."""
    units = tmp_path / "units"
    units.mkdir(exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        "[checks]\ntimeout = 3\n[docker]\ntimeout = 1\n"
        f'daemon_json = "{tmp_path}/daemon.json"\n'
        f'[host]\nsystemd_dirs = ["{units}"]\nlease_dirs = ["{tmp_path}/leases"]\n'
        f'bin_dirs = ["{tmp_path}"]\n'
        f'[fix]\njournal_dir = "{tmp_path}/journal"\n'
        f'[stack]\nstate_dir = "{tmp_path}/state"\n'
    )
    return config


def assert_clear(run: DoctorRun, argv: tuple[str, ...]) -> None:
    assert run.code in DOCUMENTED, (argv, run.code, run.stderr)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    # report's summary of what it wrote goes to stderr (its stdout is the report).
    for line in run.stderr.splitlines() if argv[0] != "report" else ():
        assert line.startswith("shipyard-doctor: "), (argv, run.stderr)
    # A check times out after 3 s; fix runs the checks once, then its own steps.
    assert run.elapsed < 20, (argv, run.elapsed)
    command = argv[0]
    if command in EXPECTED:
        assert run.code == EXPECTED[command], (argv, run.code, run.stdout, run.stderr)
        # deploy/status/undeploy give up after [docker] timeout (1 s) plus a margin.
        assert run.elapsed < 10, (argv, run.elapsed)
    if command == "deploy":
        assert "docker-daemon" in run.stdout, run.stdout
        assert "the Docker daemon must answer first" in run.stdout, run.stdout
        assert "--force" not in run.stdout.replace("(--force cannot", ""), run.stdout
    if command in ("status", "undeploy"):
        assert len(run.stderr.splitlines()) == 1, run.stderr
        assert "Docker does not answer at unix://" in run.stderr, run.stderr
        assert "Pool(" not in run.stderr and "Errno" not in run.stderr, run.stderr
    if command == "report":
        assert run.stdout.startswith("#"), run.stdout[:200]
        assert "did not answer" in run.stderr, run.stderr


def test_no_docker_installed(tmp_path):
    config = config_in(tmp_path)
    for argv in COMMANDS:
        run = run_doctor(
            *argv,
            "--docker-host",
            f"unix://{tmp_path}/docker.sock",
            config=config,
            env={"PATH": str(tmp_path)},  # no docker, no dockerd
        )
        assert_clear(run, argv)
        if argv[0] == "check":
            assert run.code == 1
            assert "docker-daemon" in run.stdout and "not installed" in run.stdout
        if argv == ("undo",):
            assert run.code == 1 and "no fix run to undo" in run.stderr
        if argv[:2] == ("fix", "docker-state"):
            assert run.code == 1, (run.code, run.stdout)
            assert "must pass first: docker-daemon (failure: " in run.stdout
        if argv[0] == "list":
            assert run.code == 0


def test_hung_docker_socket(tmp_path, hanging_socket):
    config = config_in(tmp_path)
    for argv in COMMANDS:
        run = run_doctor(*argv, "--docker-host", hanging_socket.url, config=config)
        assert_clear(run, argv)
        if argv == ("check", "--json"):
            daemon = run.check("docker-daemon")
            assert daemon["status"] == "error", daemon
            assert "timed out" in daemon["summary"], daemon
        if argv[:2] == ("fix", "docker-state"):
            # Nothing can be fixed while Docker does not answer; it says why.
            assert run.code == 1, (run.code, run.stdout)
            assert "must pass first: docker-daemon (error: " in run.stdout
            assert "nothing to fix" not in run.stdout, run.stdout
        if argv[0] in ("status", "undeploy"):
            assert "did not answer within 1 s" in run.stderr, run.stderr


def test_socket_that_denies_permission_as_nobody(unprivileged_venv):
    # pytest's tmp_path is root's alone (0700 parents): nobody needs a path it can
    # walk to, so this test makes its own dir in /tmp and removes it.
    tmp_path = Path(tempfile.mkdtemp(prefix="sdt-nobody-", dir="/tmp"))
    tmp_path.chmod(0o755)
    listening = socket.socket(socket.AF_UNIX)
    path = tmp_path / "docker.sock"
    listening.bind(str(path))
    listening.listen(8)
    try:
        os.chmod(path, 0o600)  # root's: nobody may not connect
        config = config_in(tmp_path)
        config.chmod(0o644)
        (tmp_path / "units").chmod(0o755)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        python = str(unprivileged_venv / "bin" / "python")
        for argv in COMMANDS:
            run = run_doctor(
                *argv,
                "--docker-host",
                f"unix://{path}",
                config=config,
                python=python,
                as_nobody=True,
            )
            assert_clear(run, argv)
            if argv == ("check", "--json"):
                daemon = run.check("docker-daemon")
                assert daemon["status"] == "failure", daemon
                assert "permission denied" in daemon["summary"].lower(), daemon
            if argv[0] in ("status", "undeploy"):
                assert f"permission denied on {path}" in run.stderr, run.stderr
    finally:
        listening.close()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_undo_list_and_undo_write_nothing_without_a_journal(tmp_path):
    config = config_in(tmp_path)
    journal = tmp_path / "journal"
    run = run_doctor("undo", "--list", config=config)
    assert (run.code, run.stderr) == (0, ""), run.stderr
    assert run.stdout == f"no fix runs recorded in {journal}\n"
    for argv in (("undo",), ("undo", "20260101-000000-1")):
        run = run_doctor(*argv, config=config)
        assert run.code in (1, 2) and len(run.stderr.splitlines()) == 1, run.stderr
    assert not journal.exists()  # listing and refusing wrote nothing


def test_an_unknown_fix_run_is_a_usage_error_naming_the_runs(tmp_path):
    """One run recorded through the fix engine's own journal, as a fix run
    records it."""
    from shipyard_doctor.fixengine.journal import Journal

    config = config_in(tmp_path)
    with Journal(str(tmp_path / "journal")).run(["test"]) as recorded:
        recorded.begin_fix("example", "example-check")
        recorded.end_fix("applied")
    run = run_doctor("undo", "no-such-run", config=config)
    assert run.code == 2, (run.code, run.stderr)
    assert run.stderr == (
        "shipyard-doctor: error: unknown fix run 'no-such-run'; runs: "
        f"{recorded.run_id} (`shipyard-doctor undo --list` shows all)\n"
    )


def test_fix_json_is_one_document_whatever_happens(tmp_path):
    """`fix ID --json` prints JSON on stdout also when it cannot fix yet (exit 1)
    and when there is nothing to fix (exit 0), never a plain line."""
    config = config_in(tmp_path)
    socket_path = f"unix://{tmp_path}/docker.sock"  # no daemon there
    blocked = run_doctor(
        "fix", "docker-state", "--json", "--docker-host", socket_path, config=config
    )
    assert blocked.code == 1, (blocked.stdout, blocked.stderr)
    doc = blocked.doc
    assert (doc["schema"], doc["fix"], doc["state"]) == (1, "docker-state", "blocked")
    assert doc["blocking"] == ["docker-daemon"] and doc["fixes"] == [], doc
    assert doc["message"].startswith(
        "cannot fix with docker-state yet, this must pass first: docker-daemon "
        "(failure: "
    ), doc["message"]
    daemon = next(c for c in doc["checks"] if c["id"] == "docker-daemon")
    assert daemon["status"] == "failure" and "does not exist" in daemon["summary"]
    assert blocked.stderr == ""

    agent = tmp_path / "no-agent"  # the check is skipped: nothing to fix
    config.write_text(config.read_text() + f'[agent]\nbinary = "{agent}"\n')
    nothing = run_doctor("fix", "agent-libs", "--json", "--yes", config=config)
    assert nothing.code == 0, (nothing.stdout, nothing.stderr)
    doc = nothing.doc
    assert (doc["fix"], doc["state"], doc["blocking"]) == (
        "agent-libs",
        "nothing-to-fix",
        [],
    )
    (check,) = doc["checks"]
    assert (check["id"], check["status"]) == ("agent-libs", "skipped"), check
    assert doc["message"] == (
        f"nothing to fix: agent-libs skipped: [agent] binary {agent} does not "
        "exist: nothing to check"
    )
    assert doc["fixes"] == [] and nothing.stderr == ""
    assert not (tmp_path / "journal").exists()

    unknown = run_doctor("fix", "no-such-fix", "--json", config=config)
    assert (unknown.code, unknown.stdout) == (2, ""), unknown.stdout
    assert unknown.stderr.startswith("shipyard-doctor: error: unknown fix id ")
