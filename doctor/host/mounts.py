"""Which mount covers a path, and is it read-only: /proc/self/mountinfo.

The 2014 user could not fix the agent because "/lib64 is on a read-only filesystem":
on CoreOS /lib64 is a symlink into /usr, and /usr is a read-only A/B partition. To
say so — and which mount it is — the doctor reads mountinfo (proc(5)): unlike
/proc/mounts it has the per-mount options (a read-only bind mount of a writable
filesystem shows ``ro`` there only), the root of a bind mount, and the mount ids.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from shipyard_doctor.host.facts import host_fact
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

MOUNTINFO = "/proc/self/mountinfo"

_ESCAPE = re.compile(r"\\([0-7]{3})")


@record
class Mount:
    """One line of mountinfo (field names as in proc(5))."""

    mount_id: int
    parent_id: int
    device: str  # major:minor
    root: str  # the directory of the filesystem mounted here (a bind mount's source)
    mount_point: str
    options: tuple[str, ...]  # per-mount: ro/rw, nosuid, ...
    optional: tuple[str, ...]  # shared:N, master:N, ...
    fs_type: str
    source: str
    super_options: tuple[str, ...]  # per-superblock

    @property
    def read_only(self) -> bool:
        return "ro" in self.options or "ro" in self.super_options

    def describe(self) -> str:
        """'/usr (ext4 /dev/vda, ro)', with the bind source when it is one."""
        bind = f" {self.root} of" if self.root != "/" else ""
        mode = "ro" if self.read_only else "rw"
        return f"{self.mount_point} ({self.fs_type}{bind} {self.source}, {mode})"


def unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash as octal: \\040 etc."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """Parse mountinfo; a line that does not have the documented shape is skipped
    rather than failing the whole table."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            mount_id, parent_id = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        if len(fields) < dash + 3:
            continue
        mounts.append(
            Mount(
                mount_id=mount_id,
                parent_id=parent_id,
                device=fields[2],
                root=unescape(fields[3]),
                mount_point=unescape(fields[4]),
                options=tuple(fields[5].split(",")),
                optional=tuple(fields[6:dash]),
                fs_type=fields[dash + 1],
                source=unescape(fields[dash + 2]),
                super_options=tuple(",".join(fields[dash + 3 : dash + 4]).split(",")),
            )
        )
    return tuple(mounts)


def read_mountinfo(path: str = MOUNTINFO) -> tuple[Mount, ...]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


@host_fact
def mountinfo(host: Host) -> tuple[Mount, ...]:
    """The doctor's own mounts: mountinfo under ``[host] proc_dir``."""
    return read_mountinfo(str(host.proc / "self" / "mountinfo"))


def mount_for(path: str, mounts: tuple[Mount, ...]) -> Mount | None:
    """The mount that covers ``path`` (already resolved): the longest mount point that
    is a prefix of it; of several mounts on that point, the last one (on top)."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def nearest_existing(path: str) -> str:
    """``path`` or its closest existing parent: where ``mkdir -p path`` would write."""
    current = os.path.abspath(path)
    while not os.path.exists(current) and current != "/":
        current = os.path.dirname(current)
    return current


# --- the lib-readonly evidence ------------------------------------------------------

COREOS_IDS = {"coreos", "flatcar", "fedora-coreos"}


@record
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


def place(path: str, mounts: tuple[Mount, ...]) -> Place:
    existing = nearest_existing(path)
    real = os.path.realpath(existing)
    mount = mount_for(real, mounts)
    read_only = bool(mount and mount.read_only) or erofs(real)
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


def erofs(path: str) -> bool:
    """The kernel's own answer (statvfs ST_RDONLY), for a mount mountinfo missed."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def coreos_layout(mounts: tuple[Mount, ...], release: dict[str, str]) -> str:
    """Why this looks like CoreOS/Flatcar ('' if it does not): a read-only /usr with
    /lib64 pointing into it, or an os-release that says so."""
    usr = mount_for(os.path.realpath("/usr"), mounts)
    if usr is None or not usr.read_only:
        return ""
    ids = {
        release.get("ID", ""),
        f"{release.get('ID', '')}-{release.get('VARIANT_ID')}",
    }
    if ids & COREOS_IDS:
        return f"read-only {usr.describe()}, os-release ID={release.get('ID')}"
    if os.path.realpath("/lib64").startswith("/usr/"):
        return f"read-only {usr.describe()}, /lib64 → {os.path.realpath('/lib64')}"
    return ""


@record
class LibPlaces:
    """The library dirs, the agent's lib_dir and the ld.so.conf.d dir, each with its
    mount and whether it can be written; and why this looks like CoreOS/Flatcar."""

    lib_dirs: tuple[Place, ...]
    lib_dir: Place
    ld_so_conf_dir: Place
    coreos: str  # "" when it does not look like CoreOS/Flatcar

    @property
    def read_only(self) -> tuple[Place, ...]:
        return tuple(p for p in self.lib_dirs if p.read_only)

    def to_data(self) -> dict[str, object]:
        return {
            "lib_dirs": [p.to_dict() for p in self.lib_dirs],
            "lib_dir": self.lib_dir.to_dict(),
            "ld_so_conf_dir": self.ld_so_conf_dir.to_dict(),
            "coreos": self.coreos,
        }
