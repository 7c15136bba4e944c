"""The shipyard-agent binary's shared libraries as the loader would find them.

:func:`agent_libs` reads the binary's ELF dynamic section (never running it), builds
the loader's view for it (the ld.so.cache, this shell's LD_LIBRARY_PATH, the start
script fix agent-libs writes) and resolves every library; for each missing one it
lists the closest installed files. The check agent-libs words the verdict, the fix
agent-libs reads :class:`AgentLibsEvidence`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host.agent import wrapper_lib_path, wrapper_path
from shipyard_doctor.host.elf import ElfFile
from shipyard_doctor.host.ldso import (
    Candidate,
    LdCacheError,
    LoaderView,
    Resolution,
    closest_installed,
    ld_so_cache,
    resolve_all,
)
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host


@record
class Missing:
    """A library the agent needs that the loader would not find, and the files on this
    host that might stand in for it."""

    soname: str
    candidates: tuple[Candidate, ...]  # closest first

    @property
    def usable(self) -> tuple[str, ...]:
        """Candidates of the binary's ELF class and machine: what a link may use."""
        return tuple(c.path for c in self.candidates if c.usable)


@record
class AgentLibsEvidence:
    """The agent-libs evidence: the agent binary's libraries as its loader would
    resolve them, and the ones it would not find."""

    binary: str
    elf: ElfFile
    view: LoaderView
    libraries: tuple[Resolution, ...]
    missing: tuple[Missing, ...]
    wrapper: str | None  # the start script the agent runs under, if any
    notes: tuple[str, ...]  # how the loader's view was made

    @property
    def interpreter_missing(self) -> bool:
        interp = self.elf.interpreter
        return interp is not None and not os.path.exists(interp)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.interpreter_missing

    def describe(self) -> list[str]:
        lines = list(self.notes)
        for lib in self.libraries:
            by = "" if lib.needed_by == self.elf.path else f", for {lib.needed_by}"
            found = f"{lib.path} ({lib.via}{by})" if lib.path else f"not found{by}"
            lines.append(f"{lib.soname} => {found}")
            lines += [f"{lib.soname}: skipped {note}" for note in lib.rejected]
        return lines

    def to_data(self) -> dict[str, Any]:
        if not self.elf.dynamic:
            return {"binary": self.binary, "static": True}
        elf, view = self.elf, self.view
        data: dict[str, Any] = {
            "binary": self.binary,
            "elf": elf.describe(),
            "interpreter": elf.interpreter,
            "needed": list(elf.needed),
            "rpath": list(elf.rpath) if elf.rpath is not None else None,
            "runpath": list(elf.runpath) if elf.runpath is not None else None,
            "ld_so_cache": view.cache.path if view.cache else None,
            "libraries": [
                {
                    "soname": lib.soname,
                    "needed_by": lib.needed_by,
                    "path": lib.path,
                    "via": lib.via,
                    "rejected": list(lib.rejected),
                }
                for lib in self.libraries
            ],
            "wrapper": self.wrapper,
        }
        if not self.ok:
            data["missing"] = [
                {"soname": m.soname, "candidates": list(m.usable)} for m in self.missing
            ]
        return data


def agent_libs(host: Host, path: str, elf: ElfFile) -> AgentLibsEvidence:
    if not elf.dynamic:
        return AgentLibsEvidence(path, elf, LoaderView(None, (), ()), (), (), None, ())
    view, notes, wrapper = loader_view(host, path)
    libraries = resolve_all(elf, view)
    missing = tuple(
        Missing(lib.soname, closest_installed(lib.soname, elf, view))
        for lib in libraries
        if lib.path is None
    )
    return AgentLibsEvidence(path, elf, view, libraries, missing, wrapper, tuple(notes))


def loader_view(host: Host, binary: str) -> tuple[LoaderView, list[str], str | None]:
    """The loader's view for the agent, how it was made, and the start script it
    runs under, if the agent-libs fix wrote one."""
    cache_path = host.config.host.ld_so_cache
    notes = []
    try:
        cache = ld_so_cache(host, cache_path)
    except LdCacheError as exc:
        cache, notes = None, [f"ld.so.cache not used: {exc}"]
    if cache is None and not notes:
        notes.append(f"no ld.so.cache at {cache_path}: default dirs only")
    raw = host.environ.get("LD_LIBRARY_PATH")
    ld_path = tuple(raw.replace(";", ":").split(":")) if raw else ()
    if ld_path:
        notes.append(
            f"LD_LIBRARY_PATH={raw} (this shell's; the agent sees it only if it is "
            "started with it)"
        )
    wrapper = wrapper_path(host.config.agent.lib_dir)
    wrapped = wrapper_lib_path(wrapper, binary)
    if wrapped:
        ld_path = (*wrapped, *ld_path)
        notes.append(
            f"started through {wrapper} (written by fix agent-libs), which puts "
            f"LD_LIBRARY_PATH={':'.join(wrapped)} first"
        )
    extra = host.config.host.lib_dirs
    return LoaderView(cache, ld_path, extra), notes, wrapper if wrapped else None
