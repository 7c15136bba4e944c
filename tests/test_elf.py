"""The ELF reader and the loader search (doctor/elf.py, doctor/ldso.py) on real files:
binaries and libraries of this machine compared with readelf/ldconfig/ldd, recorded
files of other classes and byte orders (tests/data/elf/README.md says where each one
comes from), and ld.so.cache files written by the real ldconfig in every format."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from infra import missing
from shipyard_doctor.host.elf import ElfError, read_elf
from shipyard_doctor.host.ldso import (
    LoaderView,
    closest_installed,
    parse_ld_so_cache,
    read_ld_so_cache,
    resolve_all,
)

DATA = Path(__file__).parent / "data" / "elf"
LDCONFIG_LINE = re.compile(r"^\t(\S+) \(.*\) => (\S+)$", re.M)
REAL_BINARIES = ["/usr/bin/ls", "/usr/bin/true", "/usr/sbin/dockerd", sys.executable]


def _readelf_needed(path: str) -> list[str]:
    out = subprocess.run(
        ["readelf", "-dW", path], capture_output=True, text=True, check=True
    ).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", out)


@pytest.mark.parametrize("path", REAL_BINARIES)
def test_needed_of_real_binaries_matches_readelf(path):
    if not Path(path).exists() or shutil.which("readelf") is None:
        missing(f"{path} or readelf: apt-get install docker.io binutils")
    elf = read_elf(path)
    assert list(elf.needed) == _readelf_needed(path)
    assert (elf.bits, elf.big_endian, elf.machine_name) == (64, False, "x86-64")
    assert elf.interpreter == "/lib64/ld-linux-x86-64.so.2"


@pytest.mark.parametrize(
    ("name", "described", "needed", "interpreter", "runpath"),
    [
        (
            "exe_solaris64_cc.sparc.elf",
            "64-bit SPARC V9, big-endian",
            ("libc.so.1",),
            "/usr/lib/sparcv9/ld.so.1",
            None,
        ),
        (
            "exe_solaris32_cc.sparc.elf",
            "32-bit SPARC32+, big-endian",
            ("libc.so.1",),
            "/usr/lib/ld.so.1",
            None,
        ),
        (
            "aarch64_be_gnu_hash.so.elf",
            "64-bit AArch64, big-endian",
            ("libc.so.6",),
            None,
            None,
        ),
        ("exe_simple32.elf", "32-bit i386", ("libc.so.6",), "/lib/ld-linux.so.2", None),
        ("dt_flags.so.elf", "32-bit i386", ("libc.so.6",), None, ("$ORIGIN/lib",)),
    ],
)
def test_recorded_files_of_other_classes_and_byte_orders(
    name, described, needed, interpreter, runpath
):
    elf = read_elf(str(DATA / name))
    assert elf.describe() == described
    assert elf.needed == needed
    assert elf.interpreter == interpreter
    assert elf.runpath == runpath and elf.rpath is None


def test_sstripped_binary_is_read_through_pt_dynamic(tmp_path):
    # sstrip removes the section headers; the loader never needed them, and the
    # reader must fall back to PT_DYNAMIC + DT_STRTAB like the loader does.
    copy = tmp_path / "ls"
    shutil.copy("/usr/bin/ls", copy)
    data = bytearray(copy.read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
    copy.write_bytes(bytes(data))
    run = subprocess.run([copy, "--version"], capture_output=True, check=False)
    assert run.returncode == 0, run.stderr  # still a working program
    assert read_elf(str(copy)).needed == read_elf("/usr/bin/ls").needed


def test_not_elf_and_truncated_files_are_elf_errors(tmp_path):
    script = tmp_path / "shipyard-agent"
    script.write_text("#!/bin/sh\nexec docker run shipyard/agent\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        read_elf(str(script))
    cut = tmp_path / "cut"
    cut.write_bytes(Path("/usr/bin/true").read_bytes()[:200])
    with pytest.raises(ElfError, match="truncated"):
        read_elf(str(cut))


@pytest.mark.parametrize("fmt", ["new", "old", "compat", "debian12"])
def test_recorded_ld_so_caches_match_ldconfig_p(fmt):
    cache = read_ld_so_cache(str(DATA / f"ld.so.cache-{fmt}"))
    recorded = (DATA / f"ld.so.cache-{fmt}.ldconfig-p.txt").read_text()
    assert [(e.soname, e.path) for e in cache.entries] == LDCONFIG_LINE.findall(
        recorded
    )
    assert cache.format == ("new" if fmt == "debian12" else fmt)


def test_live_ld_so_cache_matches_ldconfig_p():
    if not Path("/etc/ld.so.cache").exists() or not shutil.which("ldconfig"):
        missing("/etc/ld.so.cache or ldconfig: apt-get install libc-bin")
    cache = read_ld_so_cache("/etc/ld.so.cache")
    out = subprocess.run(
        ["ldconfig", "-p"], capture_output=True, text=True, check=True
    ).stdout
    assert [(e.soname, e.path) for e in cache.entries] == LDCONFIG_LINE.findall(out)
    assert read_ld_so_cache("/nonexistent/ld.so.cache") is None


def test_ldconfig_writes_every_format_we_read(require_infra, tmp_path):
    """The real ldconfig, in a temp root (-r: nothing outside it is written)."""
    require_infra("ldconfig")  # -r chroots: root only
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    lib = tmp_path / "opt" / "lib"
    lib.mkdir(parents=True)
    shutil.copy("/lib/x86_64-linux-gnu/libz.so.1", lib / "libz.so.1")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ld.so.conf").write_text("/opt/lib\n")
    for fmt in ("new", "old", "compat"):
        subprocess.run(
            [ldconfig, "-r", tmp_path, "-c", fmt, "-C", f"/etc/cache.{fmt}"],
            check=True,
        )
        cache = parse_ld_so_cache((tmp_path / "etc" / f"cache.{fmt}").read_bytes())
        assert cache.format == fmt
        assert ("libz.so.1", "/opt/lib/libz.so.1") in [
            (e.soname, e.path) for e in cache.entries
        ]


def _ldd(path: str) -> dict[str, str]:
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    found = dict(re.findall(r"^\s+(\S+) => (\S+) \(", out, re.M))
    interp = re.search(r"^\s+(/\S+) \(0x", out, re.M)
    if interp:
        found[Path(interp.group(1)).name] = interp.group(1)
    return found


@pytest.mark.parametrize("path", REAL_BINARIES)
def test_resolution_matches_ldd(path):
    if not Path(path).exists() or not shutil.which("ldd"):
        missing(f"{path} or ldd: apt-get install docker.io libc-bin")
    binary = read_elf(path)
    view = LoaderView(read_ld_so_cache("/etc/ld.so.cache"))
    mine = {r.soname: r.path for r in resolve_all(binary, view)}
    assert mine == _ldd(path)


def test_origin_runpath_wrong_class_and_candidates(tmp_path):
    # A copy of a real 64-bit binary with RUNPATH $ORIGIN/lib, a real 64-bit libz
    # there, and a real 32-bit library under the name it needs too.
    app = tmp_path / "bin" / "app"
    app.parent.mkdir()
    shutil.copy("/usr/bin/true", app)
    subprocess.run(["patchelf", "--add-needed", "libz.so.1", app], check=True)
    subprocess.run(["patchelf", "--add-needed", "libfoo.so.2", app], check=True)
    subprocess.run(["patchelf", "--set-rpath", "$ORIGIN/lib", app], check=True)
    (app.parent / "lib").mkdir()
    shutil.copy("/lib/x86_64-linux-gnu/libz.so.1", app.parent / "lib" / "libz.so.1")
    shutil.copy(DATA / "dt_flags.so.elf", app.parent / "lib" / "libfoo.so.2")
    shutil.copy("/lib/x86_64-linux-gnu/libz.so.1", app.parent / "lib" / "libfoo.so.1")
    binary = read_elf(str(app))
    assert binary.runpath == ("$ORIGIN/lib",)
    found = {r.soname: r for r in resolve_all(binary, LoaderView(None))}
    assert found["libz.so.1"].path == f"{app.parent}/lib/libz.so.1"
    assert found["libz.so.1"].via == f"DT_RUNPATH of {app}"
    assert found["libfoo.so.2"].path is None
    assert found["libfoo.so.2"].rejected == (
        f"{app.parent}/lib/libfoo.so.2: 32-bit i386, the binary is 64-bit x86-64",
    )
    (closest,) = closest_installed("libfoo.so.2", binary, LoaderView(None))
    assert (closest.path, closest.usable) == (f"{app.parent}/lib/libfoo.so.1", True)
