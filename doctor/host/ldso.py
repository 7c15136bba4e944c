"""Where the dynamic loader would find each shared library a binary needs.

The 2014 report was "error while loading shared libraries: libdevmapper.so.1.02.1:
cannot open shared object file" (ehazlett/shipyard#134): the agent was linked on
Ubuntu, CoreOS ships the library as libdevmapper.so.1.02. To say that before the agent
is started, this module repeats glibc's search (ld.so(8)): DT_RPATH (only without
DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache, the default dirs; a file
counts only if its ELF class, byte order and machine match. It also lists the closest
installed names (same stem before ".so") for the message.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from shipyard_doctor.host import files
from shipyard_doctor.host.elf import ElfError, ElfFile, read_elf
from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.records import field, mutable_record, record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

#: Real caches are under 1 MiB; past this it is not one.
CACHE_LIMIT = 64 * 1024 * 1024

NEW_MAGIC = b"glibc-ld.so.cache1.1"
OLD_MAGIC = b"ld.so-1.7.0"
#: glibc-hwcaps entries (glibc >= 2.33) carry this bit; CPU-specific, tried last.
HWCAP_EXTENSION = 1 << 62

#: Debian multiarch triplets by (bits, big-endian, e_machine).
MULTIARCH = {
    (64, False, 62): "x86_64-linux-gnu",
    (32, False, 62): "x86_64-linux-gnux32",
    (32, False, 3): "i386-linux-gnu",
    (64, False, 183): "aarch64-linux-gnu",
    (32, False, 40): "arm-linux-gnueabihf",
    (64, False, 21): "powerpc64le-linux-gnu",
    (64, True, 21): "powerpc64-linux-gnu",
    (64, True, 22): "s390x-linux-gnu",
    (64, False, 243): "riscv64-linux-gnu",
}
#: What $PLATFORM expands to, by e_machine (AT_PLATFORM of the usual kernels).
PLATFORMS = {62: "x86_64", 3: "i686", 183: "aarch64", 22: "s390x", 243: "riscv64"}
_MAX_OBJECTS = 400  # a dependency tree larger than this is not a real program


class LdCacheError(Exception):
    """The file is not an ld.so.cache this module understands."""


@record
class CacheEntry:
    """One library in the ld.so.cache: its soname, path, flags and hardware caps."""

    soname: str
    path: str
    flags: int  # FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 = 0x0303, ...
    hwcap: int = 0


@record
class LdCache:
    """The ld.so.cache as parsed: its file, its format and its entries."""

    path: str
    format: str  # "new", "old" or "compat" (both, old first)
    entries: tuple[CacheEntry, ...]

    def lookup(self, soname: str) -> list[CacheEntry]:
        """Entries for ``soname``, baseline before glibc-hwcaps subdirectories."""
        found = [e for e in self.entries if e.soname == soname]
        return sorted(found, key=lambda e: bool(e.hwcap & HWCAP_EXTENSION))


def parse_ld_so_cache(data: bytes, path: str = "ld.so.cache") -> LdCache:
    """Parse glibc's binary cache: "glibc-ld.so.cache1.1" (the format since glibc
    2.32 writes by default), the libc5-era "ld.so-1.7.0", or both back to back."""
    if data.startswith(NEW_MAGIC):
        return LdCache(path, "new", _new_entries(data, 0))
    if not data.startswith(OLD_MAGIC):
        raise LdCacheError(f"{path}: not an ld.so.cache (magic {data[:20]!r})")
    (count,) = _unpack("<I", data, 12)
    strings = 16 + 12 * count  # old string offsets count from the end of the entries
    old = tuple(
        CacheEntry(_cstr(data, strings + key), _cstr(data, strings + value), flags)
        for flags, key, value in (
            _unpack("<iII", data, 16 + 12 * i) for i in range(count)
        )
    )
    new_at = (strings + 7) & ~7  # the new table follows, 8-byte aligned
    if data[new_at : new_at + len(NEW_MAGIC)] == NEW_MAGIC:
        return LdCache(path, "compat", _new_entries(data, new_at))
    return LdCache(path, "old", old)


@host_fact
def ld_so_cache(host: Host, path: str) -> LdCache | None:
    """:func:`read_ld_so_cache`, once per run and path."""
    return read_ld_so_cache(path)


def read_ld_so_cache(path: str) -> LdCache | None:
    """The cache at ``path``; None when there is none (the loader then searches the
    default dirs only). LdCacheError when the file is there but unreadable."""
    try:
        data = files.read_bytes(path, CACHE_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LdCacheError(f"cannot read {path}: {exc.strerror}") from None
    return parse_ld_so_cache(data, path)


def _new_entries(data: bytes, base: int) -> tuple[CacheEntry, ...]:
    count, _strings_len, flags = _unpack("<IIB", data, base + 20)
    # glibc >= 2.32 records the byte order; older caches are in the host's own.
    order = {2: "<", 3: ">"}.get(flags & 3, "<" if sys.byteorder == "little" else ">")
    if order == ">":
        (count,) = _unpack(">I", data, base + 20)
    entries = []
    for i in range(count):
        eflags, key, value, _osv, hwcap = _unpack(
            order + "iIIIQ", data, base + 48 + 24 * i
        )
        soname, path = _cstr(data, base + key), _cstr(data, base + value)
        entries.append(CacheEntry(soname, path, eflags, hwcap))
    return tuple(entries)


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise LdCacheError(f"truncated ld.so.cache (at offset {offset})") from None


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise LdCacheError(f"string offset {offset} outside the ld.so.cache")
    return data[offset:end].decode("utf-8", "replace")


# --- the search ----------------------------------------------------------------


@record
class LoaderView:
    """What the loader consults besides the objects themselves."""

    cache: LdCache | None
    ld_library_path: tuple[str, ...] = ()
    extra_dirs: tuple[str, ...] = ()  # [host] lib_dirs, searched after the defaults


@record
class Resolution:
    """One DT_NEEDED entry and where the loader would take it from."""

    soname: str
    needed_by: str  # path of the object that needs it
    path: str | None  # None: "cannot open shared object file"
    via: str  # "ld.so.cache", "DT_RUNPATH of X", "default dir", ...
    rejected: tuple[str, ...] = ()  # files that were there but could not be used


@record
class Candidate:
    """An installed file with the same stem, for "closest installed" hints."""

    path: str
    usable: bool  # ELF class/machine match the binary
    what: str  # "64-bit x86-64" or why it is not usable


@mutable_record
class _Search:
    """One library's search: the loader's view, the binary it must match, and the files
    rejected on the way."""

    view: LoaderView
    binary: ElfFile
    rejected: list[str] = field(default_factory=list)


def default_dirs(elf: ElfFile) -> tuple[str, ...]:
    """The loader's built-in dirs for this ELF class/machine: the multiarch dirs
    (Debian, Ubuntu), lib64 (Fedora, RHEL, CoreOS), lib32/libx32, then /lib and
    /usr/lib (Arch, and the 32-bit defaults everywhere)."""
    dirs: list[str] = []
    triplet = MULTIARCH.get((elf.bits, elf.big_endian, elf.machine))
    if triplet:
        dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
    if elf.bits == 64:
        dirs += ["/lib64", "/usr/lib64"]
    elif elf.machine == 62:
        dirs += ["/libx32", "/usr/libx32"]
    else:
        dirs += ["/lib32", "/usr/lib32"]
    return (*dirs, "/lib", "/usr/lib")


def expand(entry: str, origin: str, elf: ElfFile) -> list[str]:
    """Expand $ORIGIN, $PLATFORM and $LIB in one RPATH/RUNPATH entry (ld.so(8))."""
    text = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
    platform = PLATFORMS.get(elf.machine, "")
    text = text.replace("${PLATFORM}", platform).replace("$PLATFORM", platform)
    if "$LIB" not in text and "${LIB}" not in text:
        return [text]
    triplet = MULTIARCH.get((elf.bits, elf.big_endian, elf.machine))
    libs = [f"lib/{triplet}"] if triplet else []  # Debian's glibc
    libs.append("lib64" if elf.bits == 64 else "lib")  # upstream glibc
    return [text.replace("${LIB}", lib).replace("$LIB", lib) for lib in libs]


def resolve_all(binary: ElfFile, view: LoaderView) -> tuple[Resolution, ...]:
    """Every library the loader would map for ``binary``, breadth first like ld.so,
    each soname once; transitive needs are resolved from the library that has them."""
    resolved: dict[str, Resolution] = {}
    if binary.interpreter and os.path.isfile(binary.interpreter):
        # ld.so maps itself first; a DT_NEEDED on it (libc's) is already satisfied.
        try:
            name = read_elf(binary.interpreter).soname
        except (OSError, ElfError):
            name = None
        name = name or os.path.basename(binary.interpreter)
        resolved[name] = Resolution(
            name, binary.path, binary.interpreter, "program interpreter"
        )
    queue: list[tuple[ElfFile, tuple[ElfFile, ...]]] = [(binary, ())]
    while queue and len(resolved) < _MAX_OBJECTS:
        obj, loaders = queue.pop(0)
        for soname in obj.needed:
            if soname in resolved:
                continue
            result = resolve(soname, obj, loaders, binary, view)
            resolved[soname] = result
            if result.path is not None:
                try:
                    lib = read_elf(result.path)
                except (OSError, ElfError):
                    continue
                queue.append((lib, (*loaders, obj)))
    return tuple(resolved.values())


def resolve(
    soname: str,
    obj: ElfFile,
    loaders: Sequence[ElfFile],
    binary: ElfFile,
    view: LoaderView,
) -> Resolution:
    """Where ``soname`` (a DT_NEEDED of ``obj``) comes from, in glibc's order."""
    search = _Search(view, binary)
    if "/" in soname:  # a path in DT_NEEDED is opened as it is, no search
        path = soname if search_file(search, soname) else None
        return Resolution(soname, obj.path, path, "a path", tuple(search.rejected))
    for where, candidate in _search_paths(soname, obj, loaders, binary, view):
        if search_file(search, candidate):
            rejected = tuple(search.rejected)
            return Resolution(soname, obj.path, candidate, where, rejected)
        if where == "ld.so.cache" and not os.path.exists(candidate):
            search.rejected.append(
                f"{candidate}: listed in the ld.so.cache but missing (a stale cache)"
            )
    return Resolution(soname, obj.path, None, "", tuple(search.rejected))


def _search_paths(
    soname: str,
    obj: ElfFile,
    loaders: Sequence[ElfFile],
    binary: ElfFile,
    view: LoaderView,
) -> Iterator[tuple[str, str]]:
    """(where, file) in the order ld.so tries them for a DT_NEEDED of ``obj``."""
    if obj.runpath is None:
        # DT_RPATH of the object, then of the object that loaded it, up to the
        # executable; each only if that object has no DT_RUNPATH of its own.
        for owner in (obj, *reversed(loaders)):
            if owner.rpath is not None and owner.runpath is None:
                for entry in owner.rpath:
                    for d in expand(entry, _origin(owner, binary), binary):
                        yield f"DT_RPATH of {owner.path}", os.path.join(d, soname)
    for d in view.ld_library_path:
        yield "LD_LIBRARY_PATH", os.path.join(d or ".", soname)
    for entry in obj.runpath or ():
        for d in expand(entry, _origin(obj, binary), binary):
            yield f"DT_RUNPATH of {obj.path}", os.path.join(d, soname)
    if obj.nodeflib:
        return  # -z nodefaultlib: neither the cache nor the default dirs
    for cached in view.cache.lookup(soname) if view.cache else ():
        yield "ld.so.cache", cached.path
    for d in default_dirs(binary):
        yield "default dir", os.path.join(d, soname)
    for d in view.extra_dirs:
        yield "[host] lib_dirs", os.path.join(d, soname)


def _origin(obj: ElfFile, binary: ElfFile) -> str:
    # The executable's $ORIGIN comes from /proc/self/exe (symlinks resolved); a
    # library's from the path it was found at.
    if obj is binary:
        return os.path.dirname(os.path.realpath(obj.path))
    return os.path.dirname(os.path.abspath(obj.path))


def search_file(search: _Search, path: str) -> bool:
    """Would the loader accept ``path``? Records why not, when the file exists."""
    if not os.path.isfile(path):
        return False
    try:
        lib = read_elf(path)
    except (OSError, ElfError) as exc:
        search.rejected.append(f"{path}: {_why(exc)}")
        return False
    if not search.binary.loads(lib):
        search.rejected.append(
            f"{path}: {lib.describe()}, the binary is {search.binary.describe()}"
        )
        return False
    return True


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return str(exc).split(": ", 1)[-1]


def searched_dirs(binary: ElfFile, view: LoaderView) -> tuple[str, ...]:
    """The dirs a DT_NEEDED of ``binary`` is looked for in (cache aside), deduped."""
    dirs = [os.path.dirname(p) for _, p in _search_paths("x", binary, (), binary, view)]
    return tuple(dict.fromkeys(d for d in dirs if d))


def closest_installed(
    soname: str, binary: ElfFile, view: LoaderView
) -> tuple[Candidate, ...]:
    """Installed files with the same stem (libdevmapper.so.1.02 for a missing
    libdevmapper.so.1.02.1), from the cache and the searched dirs, closest version
    first and usable ones (matching ELF class and machine) before the rest."""
    stem = soname.split(".so", 1)[0] + ".so"
    paths = (
        [e.path for e in view.cache.entries if e.soname.startswith(stem)]
        if (view.cache)
        else []
    )
    for directory in searched_dirs(binary, view):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        paths += [os.path.join(directory, n) for n in names if n.startswith(stem)]
    seen: set[tuple[str, str]] = set()
    found: list[Candidate] = []
    for path in paths:
        key = (os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        if key in seen or os.path.basename(path) == soname or not os.path.exists(path):
            continue
        seen.add(key)
        try:
            lib = read_elf(path)
        except (OSError, ElfError) as exc:
            found.append(Candidate(path, False, _why(exc)))
            continue
        usable = binary.loads(lib)
        what = lib.describe() if usable else f"{lib.describe()}, not usable"
        found.append(Candidate(path, usable, what))
    wanted = soname[len(stem) :].split(".")

    def closeness(candidate: Candidate) -> tuple[bool, int, int]:
        version = os.path.basename(candidate.path)[len(stem) :].split(".")
        common = 0
        for a, b in zip(wanted, version, strict=False):
            if a != b:
                break
            common += 1
        return (not candidate.usable, -common, abs(len(version) - len(wanted)))

    return tuple(sorted(found, key=closeness))
