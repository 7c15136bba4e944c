"""What the dynamic loader reads from an ELF file, in pure Python.

agent-libs must say which shared libraries a binary needs without running it (an old
shipyard-agent must never be executed just to be looked at) and without binutils,
which minimal hosts such as CoreOS do not ship. So this module reads the ELF header,
the program interpreter and the dynamic section (DT_NEEDED, DT_RPATH, DT_RUNPATH,
DT_SONAME, DT_FLAGS_1) for 32- and 64-bit files of either byte order.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from shipyard_doctor.records import record

MAGIC = b"\x7fELF"

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
SHT_DYNAMIC = 6
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10
DT_SONAME, DT_RPATH, DT_RUNPATH = 14, 15, 29
DT_FLAGS_1 = 0x6FFFFFFB
DF_1_NODEFLIB = 0x800  # ld -z nodefaultlib: skip the cache and the default dirs

#: e_machine values the doctor names (the rest are shown as "machine N").
MACHINES = {
    2: "SPARC",
    3: "i386",
    8: "MIPS",
    18: "SPARC32+",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S/390",
    40: "ARM",
    43: "SPARC V9",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}

#: A file larger than this in its dynamic string table is not one the loader built.
_MAX_TABLE = 16 * 1024 * 1024


class ElfError(Exception):
    """The file is not an ELF object this module can read; the message says why."""


@record
class ElfFile:
    """The loader-relevant facts of one ELF file.

    ``rpath``/``runpath`` are None when the tag is absent, which matters: the loader
    honours DT_RPATH only when there is no DT_RUNPATH.
    """

    path: str
    bits: int  # 32 or 64 (EI_CLASS)
    big_endian: bool  # EI_DATA
    machine: int  # e_machine
    elf_type: int  # e_type: 2 executable, 3 shared object / PIE
    interpreter: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...] | None
    runpath: tuple[str, ...] | None
    soname: str | None
    nodeflib: bool
    dynamic: bool  # has a dynamic section at all (False: statically linked)

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"machine {self.machine}")

    def describe(self) -> str:
        """'64-bit x86-64', as the user would compare two files."""
        order = ", big-endian" if self.big_endian else ""
        return f"{self.bits}-bit {self.machine_name}{order}"

    def loads(self, other: ElfFile) -> bool:
        """Can the loader of ``self`` use ``other``? Class, byte order and machine
        must match; anything else ld.so skips ("wrong ELF class") and searches on."""
        return (self.bits, self.big_endian, self.machine) == (
            other.bits,
            other.big_endian,
            other.machine,
        )


def read_elf(path: str) -> ElfFile:
    """Parse ``path``; ElfError if it is not ELF (a script, a truncated download)."""
    try:
        with open(path, "rb") as f:
            return _parse(f, path)
    except struct.error as exc:
        raise ElfError(f"{path}: truncated or corrupt ELF file ({exc})") from None


def _parse(f: BinaryIO, path: str) -> ElfFile:
    ident = f.read(16)
    if ident[:4] != MAGIC:
        raise ElfError(f"{path}: not an ELF file")
    if ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise ElfError(f"{path}: unknown ELF class {ident[4]} or byte order {ident[5]}")
    bits = 64 if ident[4] == 2 else 32
    order = ">" if ident[5] == 2 else "<"
    header = "HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH"
    fields = _unpack(f, order + header, 16)
    etype, machine, phoff, shoff = fields[0], fields[1], fields[4], fields[5]
    phentsize, phnum, shentsize, shnum = fields[8:12]
    segments = _program_headers(f, order, bits, phoff, phentsize, phnum)
    interpreter = None
    for ptype, offset, _vaddr, filesz in segments:
        if ptype == PT_INTERP:
            interpreter = (
                _read(f, offset, filesz).split(b"\0", 1)[0].decode("utf-8", "replace")
            )
    entries, strtab = _dynamic(f, order, bits, segments, shoff, shentsize, shnum)
    strings: dict[int, list[str]] = {}
    for tag, value in entries:
        if tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
            strings.setdefault(tag, []).append(_string(strtab, value))
    flags_1 = next((v for t, v in entries if t == DT_FLAGS_1), 0)
    return ElfFile(
        path=path,
        bits=bits,
        big_endian=order == ">",
        machine=machine,
        elf_type=etype,
        interpreter=interpreter,
        needed=tuple(strings.get(DT_NEEDED, ())),
        rpath=_search_list(strings.get(DT_RPATH)),
        runpath=_search_list(strings.get(DT_RUNPATH)),
        soname=next(iter(strings.get(DT_SONAME) or ()), None),
        nodeflib=bool(flags_1 & DF_1_NODEFLIB),
        dynamic=bool(entries),
    )


def _program_headers(
    f: BinaryIO, order: str, bits: int, phoff: int, phentsize: int, phnum: int
) -> list[tuple[int, int, int, int]]:
    """(type, file offset, virtual address, file size) of every segment."""
    segments = []
    for i in range(phnum if phoff else 0):
        if bits == 64:
            ptype, _, offset, vaddr, _, filesz, _, _ = _unpack(
                f, order + "IIQQQQQQ", phoff + i * phentsize
            )
        else:
            ptype, offset, vaddr, _, filesz, _, _, _ = _unpack(
                f, order + "IIIIIIII", phoff + i * phentsize
            )
        segments.append((ptype, offset, vaddr, filesz))
    return segments


def _dynamic(
    f: BinaryIO,
    order: str,
    bits: int,
    segments: list[tuple[int, int, int, int]],
    shoff: int,
    shentsize: int,
    shnum: int,
) -> tuple[list[tuple[int, int]], bytes]:
    """The dynamic entries and their string table.

    Section headers when present (what readelf reads); otherwise PT_DYNAMIC, with
    DT_STRTAB mapped from an address to a file offset through the PT_LOAD segments —
    what the loader itself does, and all there is in an sstripped binary.
    """
    for i in range(shnum if shoff else 0):
        if bits == 64:
            _, stype, _, _, offset, size, link, _, _, _ = _unpack(
                f, order + "IIQQQQIIQQ", shoff + i * shentsize
            )
        else:
            _, stype, _, _, offset, size, link, _, _, _ = _unpack(
                f, order + "IIIIIIIIII", shoff + i * shentsize
            )
        if stype == SHT_DYNAMIC:
            entries = _entries(f, order, bits, offset, size)
            link_at = shoff + link * shentsize
            if bits == 64:
                str_offset, str_size = _unpack(f, order + "QQ", link_at + 24)
            else:
                str_offset, str_size = _unpack(f, order + "II", link_at + 16)
            return entries, _read(f, str_offset, str_size)
    for ptype, offset, _vaddr, filesz in segments:
        if ptype == PT_DYNAMIC:
            entries = _entries(f, order, bits, offset, filesz)
            address = next((v for t, v in entries if t == DT_STRTAB), None)
            size = next((v for t, v in entries if t == DT_STRSZ), 0)
            at = None if address is None else _file_offset(segments, address)
            if at is None:
                raise ElfError(f"{f.name}: DT_STRTAB is outside every PT_LOAD segment")
            return entries, _read(f, at, size)
    return [], b""


def _entries(
    f: BinaryIO, order: str, bits: int, offset: int, size: int
) -> list[tuple[int, int]]:
    fmt = order + ("qQ" if bits == 64 else "iI")
    step = struct.calcsize(fmt)
    data = _read(f, offset, size)
    entries = []
    for at in range(0, len(data) - step + 1, step):
        tag, value = struct.unpack_from(fmt, data, at)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    return entries


def _file_offset(segments: list[tuple[int, int, int, int]], address: int) -> int | None:
    for ptype, offset, vaddr, filesz in segments:
        if ptype == PT_LOAD and vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    return None


def _search_list(values: list[str] | None) -> tuple[str, ...] | None:
    """DT_RPATH/DT_RUNPATH: colon-separated dirs (several tags are concatenated)."""
    if values is None:
        return None
    return tuple(d for value in values for d in value.split(":") if d)


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", "replace")


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    if size > _MAX_TABLE:
        raise ElfError(f"{f.name}: implausible table size {size} at offset {offset}")
    f.seek(offset)
    data = f.read(size)
    if len(data) < size:
        raise ElfError(f"{f.name}: truncated (wanted {size} bytes at {offset})")
    return data


def _unpack(f: BinaryIO, fmt: str, offset: int) -> tuple[int, ...]:
    return struct.unpack(fmt, _read(f, offset, struct.calcsize(fmt)))
