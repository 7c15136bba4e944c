"""The agent-libs fix, applied for real where libdevmapper.so.1.02.1 is missing.

The host is tests/test_agent_libs.py's: a private mount namespace where an overlay
whiteout hides Debian's libdevmapper.so.1.02.1, and a patched copy of /usr/bin/true
as the agent. Each doctor run there also gets a tmpfs on /var/cache/ldconfig, so the
real ldconfig the fix runs (with a temp ld.so.conf and cache) leaves this machine's
aux cache alone. Proof is twice: the check passes again (the engine's recheck) and the
real loader starts the agent, through the wrapper or with the new cache bind-mounted
on /etc/ld.so.cache inside such a namespace.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import test_agent_libs
from conftest import infra_setup
from doctor_cli import run_doctor
from infra import InfraMissing
from shipyard_doctor.fixes.agent_libs import included, ld_so_conf_includes

SONAME, LIBZ, LOADER_ERROR = (
    test_agent_libs.SONAME,
    test_agent_libs.LIBZ,
    test_agent_libs.LOADER_ERROR,
)
DEBIAN_DEVMAPPER = f"/lib/x86_64-linux-gnu/{SONAME}"
DATA = Path(__file__).parent / "data" / "ldso"
coreos_like = test_agent_libs.coreos_like  # the fixture, shared


class Host:
    """Paths of one temp host and how to run things in its namespace."""

    def __init__(self, tmp_path: Path, in_host: Path, ld_so_conf: str):
        self.tmp = tmp_path
        self.in_host = in_host
        self.agent = test_agent_libs._agent(tmp_path, SONAME)
        self.lib64 = tmp_path / "usr" / "lib64"
        self.lib64.mkdir(parents=True)
        self.lib_dir = tmp_path / "opt" / "shipyard" / "lib"
        self.link = self.lib_dir / SONAME
        self.wrapper = tmp_path / "opt" / "shipyard" / "bin" / "shipyard-agent-wrapper"
        self.etc = tmp_path / "etc"
        (self.etc / "ld.so.conf.d").mkdir(parents=True)
        (self.etc / "ld.so.conf").write_text(ld_so_conf)
        self.cache = self.etc / "ld.so.cache"
        self.conf = self.etc / "ld.so.conf.d" / "shipyard-doctor.conf"
        # The doctor and ldconfig run with a private aux cache (a tmpfs).
        self.in_ns = tmp_path / "in-ns"
        self.in_ns.write_text(
            f"#!/bin/sh\nexec {in_host} sh -c 'if [ -d /var/cache/ldconfig ]; then "
            "mount -t tmpfs ldconfig-aux /var/cache/ldconfig || exit 125; fi; "
            'exec "$@"\' sh "$@"\n'
        )
        self.in_ns.chmod(0o755)
        self.python = tmp_path / "python-in-ns"
        self.python.write_text(f'#!/bin/sh\nexec {self.in_ns} {sys.executable} "$@"\n')
        self.python.chmod(0o755)
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            f'[agent]\nbinary = "{self.agent}"\nlib_dir = "{self.lib_dir}"\n'
            f'[host]\nlib_dirs = ["{self.lib64}"]\nld_so_cache = "{self.cache}"\n'
            f'ld_so_conf = "{self.etc}/ld.so.conf"\n'
            f'ld_so_conf_dir = "{self.etc}/ld.so.conf.d"\n'
            f'[fix]\njournal_dir = "{tmp_path}/journal"\n'
        )

    def doctor(self, *args: str):  # type: ignore[no-untyped-def]
        return run_doctor(*args, config=self.config, python=str(self.python))

    def fix(self, expect_code: int) -> dict:
        """Check and fix agent-libs; exit 0 when the fix repaired it, 1 when not."""
        run = self.doctor("check", "--only", "agent-libs", "--fix", "--yes", "--json")
        assert run.code == expect_code, run.stdout + run.stderr
        return run.doc

    def start(self, program: Path, cache: Path | None = None):  # type: ignore[no-untyped-def]
        """Run ``program`` with the real loader in the namespace; with ``cache``
        bind-mounted on /etc/ld.so.cache there (never on this machine's)."""
        argv = [str(self.in_host), str(program)]
        if cache is not None:
            argv = [
                str(self.in_host),
                "sh",
                "-c",
                'mount --bind "$0" /etc/ld.so.cache && exec "$1"',
                str(cache),
                str(program),
            ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def _only_fix(doc: dict) -> dict:
    (fix,) = doc["fixes"]
    assert fix["fix"] == "agent-libs" and fix["check"] == "agent-libs", fix
    return fix


def test_coreos_story_links_the_other_version_and_writes_a_wrapper(
    coreos_like, tmp_path
):
    in_host, _ = coreos_like
    host = Host(tmp_path, in_host, (DATA / "coreos-ld.so.conf").read_text())
    candidate = host.lib64 / "libdevmapper.so.1.02"  # what Fedora/CoreOS ship
    shutil.copy(LIBZ, candidate)

    fix = _only_fix(host.fix(expect_code=0))
    assert fix["outcome"] == "applied", fix
    # (Steps are described when the report is written, after applying: "change".)
    link, wrapper = fix["plan"]["steps"]
    assert link == f"link {host.link} -> {candidate}"
    assert wrapper.endswith(f" {host.wrapper}")
    notes = "\n".join(fix["plan"]["notes"])
    assert f"start the agent with {host.wrapper} instead of {host.agent}" in notes
    assert f"{candidate} calls itself libz.so.1, so ldconfig would never list" in notes
    assert (
        f"{host.etc}/ld.so.conf does not include {host.etc}/ld.so.conf.d (it "
        "includes /usr/lib/ld.so.conf.d/*.conf)"
    ) in notes
    assert "shipyard/agent" in notes and "ABI-compatible" in fix["plan"]["risk"]
    recheck = fix["recheck"]
    assert recheck["status"] == "ok", recheck
    assert recheck["summary"].endswith(f"it needs when started through {host.wrapper}")
    assert f"{SONAME} => {host.link} (LD_LIBRARY_PATH)" in recheck["details"]

    # The real loader agrees: through the wrapper the agent starts, directly not.
    assert host.start(host.wrapper).returncode == 0
    direct = host.start(host.agent)
    assert direct.returncode == 127 and LOADER_ERROR in direct.stderr
    assert os.readlink(host.link) == str(candidate)
    assert stat.S_IMODE(host.wrapper.stat().st_mode) == 0o755

    # A second apply has nothing to do: the check passes, no fix is offered.
    again = host.doctor("check", "--only", "agent-libs", "--fix", "--yes", "--json")
    assert again.code == 0 and again.doc["fixes"] == [], again.stdout
    # Undo removes the link, the wrapper and the dirs the fix created.
    undo = host.doctor("undo")
    assert undo.code == 0, undo.stderr
    assert f"removed {host.wrapper} (it did not exist before)" in undo.stdout
    assert not (tmp_path / "opt").exists()
    assert host.doctor("check", "--only", "agent-libs").code == 1


def test_lost_soname_link_goes_through_ld_so_conf_and_ldconfig(coreos_like, tmp_path):
    # A library installed under a longer name whose soname link was lost (copied
    # without symlinks): its DT_SONAME is the missing name, so ldconfig lists it.
    in_host, _ = coreos_like
    with infra_setup():
        if not os.path.exists(DEBIAN_DEVMAPPER):
            raise InfraMissing(
                f"{DEBIAN_DEVMAPPER} missing: apt-get install libdevmapper1.02.1"
            )
    host = Host(tmp_path, in_host, "include ld.so.conf.d/*.conf\n")  # relative
    candidate = host.lib64 / f"{SONAME}.0"
    shutil.copy(DEBIAN_DEVMAPPER, candidate)
    old_lib = tmp_path / "old-agent-lib"
    old_lib.mkdir()
    host.conf.write_text(f"{old_lib}\n")
    host.conf.chmod(0o640)
    ldconfig = ["ldconfig", "-X", "-f", f"{host.etc}/ld.so.conf", "-C", host.cache]
    subprocess.run([host.in_ns, *ldconfig], check=True, timeout=60)
    before = {
        p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in (host.conf, host.cache)
    }
    failed = host.start(host.agent, host.cache)
    assert failed.returncode == 127 and LOADER_ERROR in failed.stderr

    fix = _only_fix(host.fix(expect_code=0))
    assert fix["outcome"] == "applied", fix
    assert fix["plan"]["steps"][:2] == [
        f"link {host.link} -> {candidate}",
        f"change {host.conf}",
    ]
    assert fix["plan"]["steps"][2].startswith("run: ") and (
        f"-X -f {host.etc}/ld.so.conf -C {host.cache}" in fix["plan"]["steps"][2]
    )
    recheck = fix["recheck"]
    assert recheck["status"] == "ok", recheck
    assert f"{SONAME} => {host.link} (ld.so.cache)" in recheck["details"]
    assert host.conf.read_text().endswith(f"\n{host.lib_dir}\n")
    # The real loader, with the rebuilt cache as its /etc/ld.so.cache, starts it.
    started = host.start(host.agent, host.cache)
    assert started.returncode == 0, started.stderr

    again = host.doctor("fix", "agent-libs", "--yes")
    assert again.code == 0 and again.stdout.startswith("nothing to fix: agent-libs ok")
    undo = host.doctor("undo")
    assert undo.code == 0, undo.stderr
    assert f"restored {host.cache}" in undo.stdout  # the cache from the journal
    for path, (data, mode) in before.items():
        assert path.read_bytes() == data and stat.S_IMODE(path.stat().st_mode) == mode
    assert not host.link.exists() and not (tmp_path / "opt").exists()
    assert host.start(host.agent, host.cache).returncode == 127


def test_candidate_that_cannot_load_is_rolled_back(coreos_like, tmp_path):
    # The closest library needs one that is not installed either: linking it
    # cannot make the agent start, the recheck says so, and the engine rolls back.
    in_host, _ = coreos_like
    host = Host(tmp_path, in_host, (DATA / "coreos-ld.so.conf").read_text())
    candidate = host.lib64 / "libdevmapper.so.1.02"
    shutil.copy(LIBZ, candidate)
    subprocess.run(
        ["patchelf", "--add-needed", "libshipyard-gone.so.7", candidate], check=True
    )
    fix = _only_fix(host.fix(expect_code=1))
    assert fix["outcome"] == "rolled-back", fix
    assert "libshipyard-gone.so.7" in fix["message"]
    assert fix["recheck"]["status"] == "failure"
    assert any(line.startswith("removed ") for line in fix["rollback"])
    assert not os.path.lexists(host.link) and not host.wrapper.exists()
    assert not (tmp_path / "opt").exists()


def test_no_compatible_library_means_no_steps(require_infra, tmp_path):
    require_infra("patchelf")
    agent = test_agent_libs._agent(tmp_path, "libshipyard-none.so.3")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[agent]\nbinary = "{agent}"\nlib_dir = "{tmp_path}/lib"\n'
        f'[fix]\njournal_dir = "{tmp_path}/journal"\n'
    )
    run = run_doctor("fix", "agent-libs", "--yes", "--json", config=config)
    (fix,) = run.doc["fixes"]
    assert (run.doc["fix"], run.doc["state"], run.doc["message"]) == (
        "agent-libs",
        "ran",
        None,
    )
    assert [c["status"] for c in run.doc["checks"]] == ["failure"], run.doc
    assert run.code == 1 and fix["outcome"] == "nothing-to-do", fix
    assert fix["message"] == (
        "no compatible library is installed for libshipyard-none.so.3: install the "
        "package that ships it, or upgrade to shipyard-agent v0.3.0+"
    )
    assert "shipyard/agent" in fix["plan"]["notes"][0]
    assert not (tmp_path / "lib").exists() and not (tmp_path / "journal").exists()


def test_ld_so_conf_includes_on_recorded_files(tmp_path):
    debian = ld_so_conf_includes(str(DATA / "debian12-ld.so.conf"))
    assert debian == ["/etc/ld.so.conf.d/*.conf"]
    assert included("/etc/ld.so.conf.d/shipyard-doctor.conf", debian[0])
    coreos = ld_so_conf_includes(str(DATA / "coreos-ld.so.conf"))
    assert coreos == ["/usr/lib/ld.so.conf.d/*.conf"]
    assert not included("/etc/ld.so.conf.d/shipyard-doctor.conf", coreos[0])
    # Relative patterns count from the including file's dir; nested includes too.
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.conf").write_text("# nested\ninclude  more/*.conf # x\n")
    (tmp_path / "top.conf").write_text("/usr/local/lib\ninclude d/*.conf\n")
    assert ld_so_conf_includes(str(tmp_path / "top.conf")) == [
        f"{tmp_path}/d/*.conf",
        f"{tmp_path}/d/more/*.conf",
    ]
    # The live file of this machine parses, whatever it includes: Debian 12 (the
    # test bed, set up by scripts/setup-dev) ships one that includes its conf dir.
    live = ld_so_conf_includes("/etc/ld.so.conf")
    assert live and all(p.startswith("/") for p in live), live
