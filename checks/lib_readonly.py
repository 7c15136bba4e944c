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
from dataclasses import dataclass

from shipyard_doctor.host.gateway import Host, os_release
from shipyard_doctor.host.mounts import (
    Mount,
    mount_for,
    nearest_existing,
    read_mountinfo,
)
from shipyard_doctor.model import Check, Result

LIB_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")
COREOS_IDS = {"coreos", "flatcar", "fedora-coreos"}


class LibReadonlyCheck(Check):
    id = "lib-readonly"
    title = "Library dirs, or a writable place for agent libraries"
    category = "agent"

    def run(self, host: Host) -> Result:
        mounts = host.memo("mounts.mountinfo", read_mountinfo)
        wanted = dict.fromkeys((*LIB_DIRS, *host.config.host.lib_dirs))
        dirs = [_place(d, mounts) for d in wanted if os.path.isdir(d)]
        if not dirs:
            return Result.skipped("none of the library dirs exists: nothing to check")
        lib_dir = _place(host.config.agent.lib_dir, mounts)
        conf_dir = _place(host.config.host.ld_so_conf_dir, mounts)
        details = [f"library dir {p.text}" for p in dirs]
        details += [
            f"[agent] lib_dir {lib_dir.text}",
            f"[host] ld_so_conf_dir {conf_dir.text}",
        ]
        readonly = [p for p in dirs if p.read_only]
        coreos = _coreos(mounts)
        data = {
            "lib_dirs": [p.to_dict() for p in dirs],
            "lib_dir": lib_dir.to_dict(),
            "ld_so_conf_dir": conf_dir.to_dict(),
            "coreos": coreos,
        }
        if not readonly:
            return Result.ok(
                f"the library dirs are writable ({', '.join(p.path for p in dirs)})",
                details=details,
                data=data,
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
                data=data,
            )
        if usr is not None and coreos:
            summary = (
                f"/usr is read-only (CoreOS/Flatcar design): never remount it; "
                f"use {route}"
            )
        else:
            summary = f"{names} read-only; the agent-libs fix uses {route} instead"
        return Result.warning(summary, details=details, hints=hints, data=data)


@dataclass(frozen=True)
class Place:
    """A dir (or where ``mkdir -p`` would write it), its mount, can it be written."""

    path: str
    real: str  # the nearest existing dir, symlinks resolved
    mount: Mount | None
    read_only: bool
    writable: bool
    text: str  # one line of evidence for the user

    def to_dict(self) -> dict[str, object]:
        m = self.mount
        return {
            "path": self.path,
            "real": self.real,
            "mount": m.mount_point if m else None,
            "fs_type": m.fs_type if m else None,
            "source": m.source if m else None,
            "read_only": self.read_only,
            "writable": self.writable,
        }


def _place(path: str, mounts: tuple[Mount, ...]) -> Place:
    existing = nearest_existing(path)
    real = os.path.realpath(existing)
    mount = mount_for(real, mounts)
    read_only = bool(mount and mount.read_only) or _erofs(real)
    writable = not read_only and os.access(real, os.W_OK)
    shown = path
    if existing != os.path.abspath(path):
        shown += f" (missing; nearest existing parent {existing})"
    if real != existing:
        shown += f" → {real}"
    if read_only:
        state = "read-only"
    elif writable:
        state = "writable"
    else:
        state = "not writable by this user (on a read-write mount: root can)"
    on = f" on {mount.describe()}" if mount else ""
    return Place(path, real, mount, read_only, writable, f"{shown}: {state}{on}")


def _erofs(path: str) -> bool:
    """The kernel's own answer (statvfs ST_RDONLY), for a mount mountinfo missed."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _coreos(mounts: tuple[Mount, ...]) -> str:
    """Why this looks like CoreOS/Flatcar ('' if it does not): a read-only /usr with
    /lib64 pointing into it, or an os-release that says so."""
    usr = mount_for(os.path.realpath("/usr"), mounts)
    if usr is None or not usr.read_only:
        return ""
    release = os_release()
    ids = {
        release.get("ID", ""),
        f"{release.get('ID', '')}-{release.get('VARIANT_ID')}",
    }
    if ids & COREOS_IDS:
        return f"read-only {usr.describe()}, os-release ID={release.get('ID')}"
    if os.path.realpath("/lib64").startswith("/usr/"):
        return f"read-only {usr.describe()}, /lib64 → {os.path.realpath('/lib64')}"
    return ""
