"""The lib-readonly fix on a real read-only bind mount (tests/test_lib_readonly.py's
``ro_bind``): it never remounts; it creates [agent] lib_dir in a temp dir, so the
agent's libraries have a writable home, and says why when it cannot.
"""

from __future__ import annotations

import os
from pathlib import Path

import test_lib_readonly
from doctor_cli import run_doctor

ro_bind = test_lib_readonly.ro_bind  # the fixture, shared


def _config(tmp_path: Path, lib_dirs: list[Path], lib_dir: Path) -> Path:
    config = test_lib_readonly._config(tmp_path, lib_dirs, lib_dir)
    with config.open("a") as out:
        out.write(f'[fix]\njournal_dir = "{tmp_path}/journal"\n')
    return config


def _fix(config: Path) -> tuple[int, dict]:
    run = run_doctor(
        "check", "--only", "lib-readonly", "--fix", "--yes", "--json", config=config
    )
    (fix,) = run.doc["fixes"]
    assert fix["fix"] == "lib-readonly" and fix["check"] == "lib-readonly", fix
    return run.code, fix


def test_creates_lib_dir_beside_read_only_lib_dirs(ro_bind, tmp_path):
    _, target = ro_bind
    lib_dir = tmp_path / "opt" / "shipyard" / "lib"
    config = _config(tmp_path, [target], lib_dir)

    code, fix = _fix(config)
    assert code == 0 and fix["outcome"] == "applied", fix
    assert fix["message"] == (
        f"applied; lib-readonly now warning: {target} read-only; the agent-libs fix "
        f"uses {lib_dir} instead"
    )
    assert fix["plan"]["summary"] == (
        f"create {lib_dir} for the libraries shipyard-agent needs, instead of {target}"
    )
    assert "never remount /usr" in fix["plan"]["notes"][0]
    assert fix["recheck"]["data"]["lib_dir"]["writable"] is True
    # The real effect: the dir exists, says what it is for, and takes a library.
    readme = lib_dir / "README"
    assert "Never remount them read-write" in readme.read_text()
    probe = lib_dir / "libprobe.so.1"
    probe.symlink_to("/lib/x86_64-linux-gnu/libz.so.1")
    probe.unlink()
    assert os.statvfs(target).f_flag & os.ST_RDONLY  # untouched: still read-only

    code, again = _fix(config)
    assert again["outcome"] == "nothing-to-do", again
    assert again["message"] == (
        f"{lib_dir} exists and is writable: put the agent's libraries there (fix "
        f"agent-libs does); {target} stay read-only by design"
    )
    undo = run_doctor("undo", config=config)
    assert undo.code == 0 and f"removed {readme}" in undo.stdout, undo.stdout
    assert not (tmp_path / "opt").exists()  # the dirs it created, gone again


def test_lib_dir_on_the_read_only_mount_gets_no_steps(ro_bind, tmp_path):
    _, target = ro_bind
    lib_dir = target / "shipyard" / "lib"
    code, fix = _fix(_config(tmp_path, [target], lib_dir))
    assert code == 1 and fix["outcome"] == "nothing-to-do", fix
    assert fix["message"] == (
        f"no steps: {lib_dir} cannot be created ({target} is read-only): set "
        "[agent] lib_dir to a dir on a writable filesystem (e.g. /opt/shipyard/lib "
        "or /var/lib/shipyard/lib), or run the agent as a container (shipyard/agent)"
    )
    assert fix["plan"]["steps"] == [] and fix["journal_run"] is None
    assert not (target / "shipyard").exists()
