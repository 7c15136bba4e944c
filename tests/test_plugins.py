"""A third-party plugin package, pip-installed from test data, is listed and run
without any change to shipyard-doctor's code; a broken one is an error, not a crash."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from doctor_cli import install_example_plugin


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    return install_example_plugin(tmp_path_factory.mktemp("site"))


def doctor(plugin_path, *args):
    env = {**os.environ, "PYTHONPATH": str(plugin_path), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "shipyard_doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_third_party_check_is_listed(plugin_path):
    done = doctor(plugin_path, "list", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    listed = {c["id"]: c for c in doc["checks"]}
    assert listed["hostname-set"]["distribution"] == "sd-example-plugin"
    assert listed["hostname-set"]["requires"] == ["ports"]
    (broken,) = doc["broken"]
    assert broken["id"] == "always-broken"
    assert "No module named 'module_that_does_not_exist'" in broken["reason"]


def test_third_party_check_runs_and_a_broken_one_is_an_error(
    plugin_path, netns, listeners
):
    # In a fresh namespace the stack's ports are free: ports passes, so the plugin
    # that requires it runs; with 8000 taken, ports fails and the plugin is skipped.
    def run():
        argv = [sys.executable, "-m", "shipyard_doctor", "check", "--json"]
        argv += ["--only", "hostname-set,always-broken"]
        env = {**os.environ, "PYTHONPATH": str(plugin_path), "NO_COLOR": "1"}
        done = subprocess.run(
            netns.nsenter_argv(argv), capture_output=True, text=True, env=env
        )
        return done, {c["id"]: c for c in json.loads(done.stdout)["checks"]}

    done, runs = run()
    # Its dependency ran first, as --only promises.
    assert set(runs) == {"ports", "hostname-set", "always-broken"}
    assert runs["ports"]["status"] == "ok", runs["ports"]
    assert runs["hostname-set"]["status"] == "ok", runs["hostname-set"]
    assert runs["hostname-set"]["summary"].startswith("hostname is")
    assert runs["always-broken"]["status"] == "error"
    assert "plugin failed to load" in runs["always-broken"]["summary"]
    assert done.returncode == 1  # the broken plugin is an error for the run

    listeners.tcp(netns, "0.0.0.0", 8000)
    done, runs = run()
    assert runs["ports"]["status"] == "failure", runs["ports"]
    assert runs["hostname-set"]["status"] == "skipped", runs["hostname-set"]
    assert "ports" in runs["hostname-set"]["summary"]
    assert done.returncode == 1


def fix_env(plugin_path, tmp_path):
    marker = tmp_path / "marker"
    config = tmp_path / "config.toml"
    config.write_text(f"[fix]\njournal_dir = '{tmp_path / 'journal'}'\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(plugin_path),
        "NO_COLOR": "1",
        "SD_EXAMPLE_MARKER": str(marker),
    }
    return marker, config, env


def doctor_in(env, *args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "shipyard_doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
    )


def test_third_party_fix_is_listed_and_offered(plugin_path, tmp_path):
    marker, config, env = fix_env(plugin_path, tmp_path)
    marker.write_text("bad\n")
    listed = json.loads(doctor_in(env, "list", "--json").stdout)
    (entry,) = [c for c in listed["checks"] if c["id"] == "example-marker"]
    assert entry["fixes"] == ["example-marker"]
    # No terminal to ask and no --yes: the plan is shown, nothing applied, exit 3.
    done = doctor_in(
        env, "check", "--only", "example-marker", "--fix", "--config", str(config)
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"fix example-marker (for example-marker): write 'good' into {marker}" in (
        done.stdout
    )
    assert "-bad\n" in done.stdout and "+good\n" in done.stdout  # the full diff
    assert "not-applied -- not applied: no terminal to ask; use --yes" in done.stdout
    assert marker.read_text() == "bad\n"
    dry = doctor_in(env, "fix", "example-marker", "--dry-run", "--config", str(config))
    assert dry.returncode == 1 and marker.read_text() == "bad\n"
    assert "planned -- dry run" in dry.stdout


def test_third_party_fix_applies_verifies_and_undoes(plugin_path, tmp_path):
    marker, config, env = fix_env(plugin_path, tmp_path)
    marker.write_text("bad\n")
    done = doctor_in(
        env,
        "check",
        "--only",
        "example-marker",
        "--fix",
        "--yes",
        "--json",
        "--config",
        str(config),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    (fix,) = doc["fixes"]
    assert fix["outcome"] == "applied" and fix["recheck"]["status"] == "ok"
    assert fix["plan"]["steps"] == [f"change {marker}"]
    assert marker.read_text() == "good\n"
    again = doctor_in(
        env,
        "check",
        "--only",
        "example-marker",
        "--fix",
        "--yes",
        "--json",
        "--config",
        str(config),
    )
    assert json.loads(again.stdout)["fixes"] == []  # passes now: nothing offered
    listed = doctor_in(env, "undo", "--list", "--config", str(config))
    assert fix["journal_run"] in listed.stdout and "example-marker applied" in (
        listed.stdout
    )
    undone = doctor_in(env, "undo", "--config", str(config))
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout == (
        f"undid fix run {fix['journal_run']}\n  restored {marker}\n"
    )
    assert marker.read_text() == "bad\n"


def test_interactive_answer_decides(plugin_path, tmp_path):
    import pty

    marker, config, env = fix_env(plugin_path, tmp_path)
    marker.write_text("bad\n")
    for answer, expected in (("n\n", "bad\n"), ("y\n", "good\n")):
        leader, follower = pty.openpty()
        try:
            os.write(leader, answer.encode())
            done = doctor_in(
                env,
                "check",
                "--only",
                "example-marker",
                "--fix",
                "--config",
                str(config),
                stdin=follower,
            )
        finally:
            os.close(leader)
            os.close(follower)
        assert "apply fix example-marker? [y/N]" in done.stdout
        assert marker.read_text() == expected


def test_a_second_fix_run_gets_exit_4(plugin_path, tmp_path):
    marker, config, env = fix_env(plugin_path, tmp_path)
    marker.write_text("bad\n")
    hold = (
        "import sys, time\nfrom shipyard_doctor.fixengine.journal import Journal\n"
        "with Journal(sys.argv[1]).lock(['shipyard-doctor', 'fix', 'x']):\n"
        "    print('locked', flush=True)\n    time.sleep(30)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path / "journal")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = doctor_in(env, "fix", "example-marker", "--yes", "--config", str(config))
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert done.returncode == 4
    # The time the lock was taken is the one part not known here: match its shape.
    assert re.fullmatch(
        r"shipyard-doctor: error: another fix run is in progress \(pid "
        + str(holder.pid)
        + r": shipyard-doctor fix x, since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); "
        r"wait for it to finish, then run again",
        done.stderr.strip(),
    ), done.stderr
    assert marker.read_text() == "bad\n"  # nothing corrupted, nothing half-applied
