"""agent-libs: would the loader find every shared library shipyard-agent needs?

shipyard-agent up to v0.2.5 was linked against libdevmapper on Ubuntu, so on CoreOS it
died with "error while loading shared libraries: libdevmapper.so.1.02.1: cannot open
shared object file" (ehazlett/shipyard#134). The check reads the binary's ELF dynamic
section (it never runs the agent), resolves every DT_NEEDED as ld.so would, and for
each missing library names the closest installed one and the safe remedies. When
fix agent-libs has written the agent's start script (wrapper_path), the libraries are
resolved with the LD_LIBRARY_PATH that script sets.
"""

from __future__ import annotations

import os

from shipyard_doctor.host.agent import (
    CONTAINER,
    find_agent_binary,
    wrapper_lib_path,
    wrapper_path,
)
from shipyard_doctor.host.elf import ElfError, ElfFile, read_elf
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.ldso import (
    LdCacheError,
    LoaderView,
    Resolution,
    closest_installed,
    read_ld_so_cache,
    resolve_all,
    searched_dirs,
)
from shipyard_doctor.model import Check, Result


class AgentLibsCheck(Check):
    id = "agent-libs"
    title = "shipyard-agent finds its shared libraries"
    category = "agent"

    def run(self, host: Host) -> Result:
        path, origin = find_agent_binary(host)
        if path is None:
            return Result.skipped(origin)
        try:
            binary = read_elf(path)
        except ElfError as exc:
            return Result.skipped(f"{exc}: no shared libraries to resolve")
        except OSError as exc:
            return Result.error(f"cannot read {path}: {exc.strerror}")
        name = os.path.basename(path)
        details = [f"binary: {path} ({binary.describe()}, {origin})"]
        if not binary.dynamic:
            return Result.ok(
                f"{name} is statically linked: it needs no shared libraries",
                details=details,
                data={"binary": path, "static": True},
            )
        view, notes, wrapper = _loader_view(host, path)
        details += notes
        libraries = resolve_all(binary, view)
        for lib in libraries:
            details.append(_describe(lib, binary))
            details += [f"{lib.soname}: skipped {note}" for note in lib.rejected]
        missing = [lib for lib in libraries if lib.path is None]
        interp = binary.interpreter
        bad_interp = interp is not None and not os.path.exists(interp)
        data = _data(path, binary, view, libraries)
        data["wrapper"] = wrapper
        if not missing and not bad_interp:
            through = f" when started through {wrapper}" if wrapper else ""
            return Result.ok(
                f"{name} finds all {len(libraries)} shared libraries it needs{through}",
                details=details,
                data=data,
            )
        problems = [lib.soname for lib in missing]
        if bad_interp:
            problems.insert(0, f"its program interpreter {interp}")
            details.append(f"program interpreter {interp} does not exist")
        found: dict[str, list[str]] = {}
        for lib in missing:
            candidates = closest_installed(lib.soname, binary, view)
            found[lib.soname] = [c.path for c in candidates if c.usable]
            details.append(
                f"{lib.soname}: closest installed: "
                + (", ".join(f"{c.path} ({c.what})" for c in candidates) or "none")
            )
        if missing:
            details.append(
                f"searched: {', '.join(searched_dirs(binary, view))} and the "
                f"ld.so.cache {view.cache.path if view.cache else '(none)'}"
            )
            details.append(
                f'the loader will say: "{name}: error while loading shared libraries:'
                f" {missing[0].soname}: cannot open shared object file: No such file "
                'or directory"'
            )
        data["missing"] = [{"soname": s, "candidates": c} for s, c in found.items()]
        closest = next((c[0] for c in found.values() if c), None)
        summary = f"{name} cannot start: " + (
            f"{problems[0]} is not installed"
            if len(problems) == 1
            else f"{len(problems)} are missing: {', '.join(problems)}"
        )
        if closest and len(problems) == 1:
            summary += f" (closest: {closest})"
        return Result.failure(
            summary,
            details=details,
            hints=_hints(host, path, found),
            data=data,
        )


def _loader_view(host: Host, binary: str) -> tuple[LoaderView, list[str], str | None]:
    """The loader's view for the agent, and the start script it runs under, if the
    agent-libs fix wrote one."""
    cache_path = host.config.host.ld_so_cache
    notes = []
    try:
        cache = host.memo(
            f"ldso.cache:{cache_path}", lambda: read_ld_so_cache(cache_path)
        )
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


def _describe(lib: Resolution, binary: ElfFile) -> str:
    by = "" if lib.needed_by == binary.path else f", for {lib.needed_by}"
    if lib.path is None:
        return f"{lib.soname} => not found{by}"
    return f"{lib.soname} => {lib.path} ({lib.via}{by})"


def _hints(host: Host, path: str, found: dict[str, list[str]]) -> list[str]:
    lib_dir = host.config.agent.lib_dir
    devmapper = any(s.startswith("libdevmapper.") for s in found)
    if devmapper:
        hints = [
            "upgrade the agent: shipyard-agent v0.2.5 and older were built against "
            "libdevmapper and talk to Docker on TCP 4243; v0.3.0 and later need "
            f"neither — or run the agent as a container: {CONTAINER}"
        ]
    else:
        hints = [
            "install the package that ships the missing library, or run the agent as "
            f"a container, which brings its own: {CONTAINER}"
        ]
    links = [
        f"ln -s {candidates[0]} {lib_dir}/{soname}"
        for soname, candidates in found.items()
        if candidates
    ]
    if links:
        hints.append(
            f"without touching the system: mkdir -p {lib_dir} && "
            + " && ".join(links)
            + f", then start only the agent with LD_LIBRARY_PATH={lib_dir} {path}"
        )
        caveat = (
            "a symlink to another version is not guaranteed to be ABI-compatible: a "
            "missing symbol shows up as 'relocation error … symbol … not defined'"
        )
        if devmapper:
            caveat += (
                " (Debian/Ubuntu ship libdevmapper.so.1.02.1; Fedora, RHEL, Arch and "
                "CoreOS ship libdevmapper.so.1.02)"
            )
        hints.append(caveat + "; prefer the upgrade")
    else:
        hints.append(
            f"or copy a build of the library for this machine into {lib_dir} and "
            f"start only the agent with LD_LIBRARY_PATH={lib_dir} {path}"
        )
    hints.append(
        "never write into /lib64 or /usr: read-only on CoreOS/Flatcar, and "
        "overwritten by package updates elsewhere (see lib-readonly)"
    )
    return hints


def _data(
    path: str, binary: ElfFile, view: LoaderView, libraries: tuple[Resolution, ...]
) -> dict[str, object]:
    return {
        "binary": path,
        "elf": binary.describe(),
        "interpreter": binary.interpreter,
        "needed": list(binary.needed),
        "rpath": list(binary.rpath) if binary.rpath is not None else None,
        "runpath": list(binary.runpath) if binary.runpath is not None else None,
        "ld_so_cache": view.cache.path if view.cache else None,
        "libraries": [
            {
                "soname": lib.soname,
                "needed_by": lib.needed_by,
                "path": lib.path,
                "via": lib.via,
                "rejected": list(lib.rejected),
            }
            for lib in libraries
        ],
    }
