"""lib-readonly: can a missing library be put where the loader looks, and if not,
is there a writable place for it instead?

The 2014 user's fix for the agent was "a symlink and ldconfig, but /lib64 is on a
read-only filesystem": on CoreOS and Flatcar /lib64 is a symlink into /usr, a
read-only A/B partition that must never be remounted. The check finds which library
dirs are read-only and on which mount, recognises that design, and checks the
writable route instead: [agent] lib_dir (with LD_LIBRARY_PATH) and ld.so.conf.d.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

LIB_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")


class LibReadonlyCheck(Check):
    id = "lib-readonly"
    title = "Library dirs, or a writable place for agent libraries"
    category = "agent"

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host.gateway import os_release
        from shipyard_doctor.host.mounts import (
            LibPlaces,
            coreos_layout,
            mountinfo,
            place,
        )

        mounts = mountinfo(host)
        wanted = dict.fromkeys((*LIB_DIRS, *host.config.host.lib_dirs))
        dirs = [place(d, mounts) for d in wanted if os.path.isdir(d)]
        if not dirs:
            return Result.skipped("none of the library dirs exists: nothing to check")
        lib_dir = place(host.config.agent.lib_dir, mounts)
        conf_dir = place(host.config.host.ld_so_conf_dir, mounts)
        details = [f"library dir {p.text}" for p in dirs]
        details += [
            f"[agent] lib_dir {lib_dir.text}",
            f"[host] ld_so_conf_dir {conf_dir.text}",
        ]
        readonly = [p for p in dirs if p.read_only]
        coreos = coreos_layout(mounts, os_release(Path(host.config.host.os_release)))
        found = LibPlaces(tuple(dirs), lib_dir, conf_dir, coreos)
        if not readonly:
            return Result.ok(
                f"the library dirs are writable ({', '.join(p.path for p in dirs)})",
                details=details,
                evidence=found,
            )
        if coreos:
            details.append(f"CoreOS/Flatcar layout: {coreos}")
        route = lib_dir.path
        hints = [
            f"put the libraries the agent needs in {route} (mkdir -p {route}) and "
            f"start only the agent with LD_LIBRARY_PATH={route} (see agent-libs)",
            "never remount /usr or a library dir read-write: on CoreOS/Flatcar the "
            "change is lost at the next update and refused under dm-verity",
        ]
        if not conf_dir.read_only:
            hints.append(
                f"or system-wide: list {route} in {conf_dir.path}/shipyard.conf and "
                "run ldconfig (only where /etc/ld.so.conf includes that dir)"
            )
        names = ", ".join(p.path for p in readonly)
        usr = next((p for p in readonly if p.real.startswith("/usr")), None)
        if lib_dir.read_only:
            return Result.failure(
                f"{names} and the agent's lib_dir {route} are read-only: no place for "
                "a library the agent needs",
                details=details,
                hints=[
                    "set [agent] lib_dir to a dir on a writable filesystem (e.g. under "
                    "/var or /opt), or run the agent as a container (shipyard/agent), "
                    "which brings its own libraries",
                    *hints[1:],
                ],
                evidence=found,
            )
        if usr is not None and coreos:
            summary = (
                f"/usr is read-only (CoreOS/Flatcar design): never remount it; "
                f"use {route}"
            )
        else:
            summary = f"{names} read-only; the agent-libs fix uses {route} instead"
        return Result.warning(summary, details=details, hints=hints, evidence=found)
