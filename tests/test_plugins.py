"""A third-party plugin package, pip-installed from test data, is listed and run
without any change to shipyard-doctor's code; a broken one is an error, not a crash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent / "data" / "plugin-pkg"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    # setuptools builds in place: build from a copy so the repo stays clean.
    source = tmp_path_factory.mktemp("src") / "plugin-pkg"
    shutil.copytree(PACKAGE, source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


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


def test_third_party_check_runs_and_a_broken_one_is_an_error(plugin_path):
    done = doctor(
        plugin_path, "check", "--json", "--only", "hostname-set,always-broken"
    )
    doc = json.loads(done.stdout)
    runs = {c["id"]: c for c in doc["checks"]}
    # Its dependency ran first, as --only promises.
    assert set(runs) == {"ports", "hostname-set", "always-broken"}
    if runs["ports"]["status"] in ("ok", "warning"):
        assert runs["hostname-set"]["status"] in ("ok", "warning")
        assert runs["hostname-set"]["summary"].startswith("hostname is")
    else:
        assert runs["hostname-set"]["status"] == "skipped"
    assert runs["always-broken"]["status"] == "error"
    assert "plugin failed to load" in runs["always-broken"]["summary"]
    assert done.returncode == 1  # the broken plugin is an error for the run
