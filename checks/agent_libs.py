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
from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host


class AgentLibsCheck(Check):
    id = "agent-libs"
    title = "shipyard-agent finds its shared libraries"
    category = "agent"

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host.agent import find_agent_binary

        path, origin = find_agent_binary(host)
        if path is None:  # no agent: none of the ELF and loader knowledge is needed
            return Result.skipped(origin)
        from shipyard_doctor.host.agentlibs import agent_libs
        from shipyard_doctor.host.elf import ElfError, read_elf
        from shipyard_doctor.host.ldso import searched_dirs

        try:
            binary = read_elf(path)
        except ElfError as exc:
            return Result.skipped(f"{exc}: no shared libraries to resolve")
        except OSError as exc:
            return Result.error(f"cannot read {path}: {exc.strerror}")
        name = os.path.basename(path)
        details = [f"binary: {path} ({binary.describe()}, {origin})"]
        found = agent_libs(host, path, binary)
        if not binary.dynamic:
            return Result.ok(
                f"{name} is statically linked: it needs no shared libraries",
                details=details,
                evidence=found,
            )
        details += found.describe()
        if found.ok:
            through = f" when started through {found.wrapper}" if found.wrapper else ""
            return Result.ok(
                f"{name} finds all {len(found.libraries)} shared libraries it "
                f"needs{through}",
                details=details,
                evidence=found,
            )
        problems = [m.soname for m in found.missing]
        interp = binary.interpreter
        if found.interpreter_missing:
            problems.insert(0, f"its program interpreter {interp}")
            details.append(f"program interpreter {interp} does not exist")
        for m in found.missing:
            details.append(
                f"{m.soname}: closest installed: "
                + (", ".join(f"{c.path} ({c.what})" for c in m.candidates) or "none")
            )
        if found.missing:
            cache = found.view.cache.path if found.view.cache else "(none)"
            details.append(
                f"searched: {', '.join(searched_dirs(binary, found.view))} and the "
                f"ld.so.cache {cache}"
            )
            details.append(
                f'the loader will say: "{name}: error while loading shared libraries:'
                f" {found.missing[0].soname}: cannot open shared object file: No such "
                'file or directory"'
            )
        usable = {m.soname: list(m.usable) for m in found.missing}
        closest = next((c[0] for c in usable.values() if c), None)
        summary = f"{name} cannot start: " + (
            f"{problems[0]} is not installed"
            if len(problems) == 1
            else f"{len(problems)} are missing: {', '.join(problems)}"
        )
        if closest and len(problems) == 1:
            summary += f" (closest: {closest})"
        return Result.failure(
            summary, details=details, hints=_hints(host, path, usable), evidence=found
        )


def _hints(host: Host, path: str, found: dict[str, list[str]]) -> list[str]:
    from shipyard_doctor.host.agent import CONTAINER

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
