"""Collectors for the tool itself, the OS, virtualization and the lib dirs' mounts."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard_doctor import __version__
from shipyard_doctor.host.gateway import os_release
from shipyard_doctor.report.collect import CollectContext, Found, read_text

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

LIB_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")


def tool(host: Host, context: CollectContext) -> Found:
    config = host.config
    found = Found(summary=f"shipyard-doctor {__version__}, stack {config.stack.name}")
    source = str(config.source) if config.source else "none (built-in defaults)"
    found.data = {
        "version": __version__,
        "python": sys.version.split()[0],
        "config_file": source,
        "config": _plain(dataclasses.asdict(config)),
    }
    lines = [
        f"shipyard-doctor {__version__} on Python {found.data['python']}",
        f"config file: {source}",
        f"stack: {config.stack.name}  docker host: {config.docker.host} "
        f"({config.docker.host_origin})",
    ]
    if config.source:
        text = read_text(str(config.source), found)
        if text is not None:
            found.files["config.toml"] = text
            lines += ["", f"--- {config.source}", text.rstrip()]
    found.text = "\n".join(lines)
    return found


def system(host: Host, context: CollectContext) -> Found:
    cfg = host.config.host
    proc = Path(cfg.proc_dir)
    found = Found()
    release = os_release(Path(cfg.os_release))
    if not release:
        found.cannot_read(cfg.os_release, "missing or unreadable")
    uname = platform.uname()
    init = _init_system(proc, found)
    distro = release.get("PRETTY_NAME") or release.get("NAME") or "unknown"
    found.summary = f"{distro}, Linux {uname.release} ({uname.machine}), init {init}"
    summary = host.summary()
    found.data = {
        "distribution": distro,
        "os_release": release,
        "kernel": uname.release,
        "kernel_version": uname.version,
        "arch": uname.machine,
        "hostname": uname.node,
        "init": init,
        "user": summary["user"],
        "uid": summary["uid"],
    }
    found.text = "\n".join(
        f"{k}: {v}" for k, v in found.data.items() if k != "os_release"
    )
    text = read_text(cfg.os_release, found)
    if text is not None:
        found.files["os-release"] = text
    return found


def _init_system(proc: Path, found: Found) -> str:
    from shipyard_doctor.host.systemd import systemd_running

    try:
        comm = (proc / "1" / "comm").read_text().strip()
    except OSError as exc:
        found.cannot_read(str(proc / "1" / "comm"), exc.strerror or str(exc))
        comm = ""
    if systemd_running() or comm == "systemd":
        return "systemd"
    return comm or "unknown"


def virtualization(host: Host, context: CollectContext) -> Found:
    """What runs this machine, from files anyone can read: DMI, the CPU's hypervisor
    flag, container marker files, the kernel's name for WSL (not /proc/1/environ,
    which needs root)."""
    from shipyard_doctor.host.vbox import read_dmi

    cfg = host.config.host
    proc = Path(cfg.proc_dir)
    found = Found()
    evidence: list[str] = []
    kinds: list[str] = []
    dmi = read_dmi(cfg.dmi_dir)
    dmi_fields: dict[str, str] = {}
    if dmi is None:
        evidence.append(f"no DMI at {cfg.dmi_dir}")
    else:
        for name in ("sys_vendor", "product_name", "board_vendor", "bios_vendor"):
            value = read_text(os.path.join(cfg.dmi_dir, name), found)
            dmi_fields[name] = (value or "").strip()
        evidence.append(
            "DMI: " + ", ".join(f"{k} {v!r}" for k, v in dmi_fields.items() if v)
        )
        joined = " ".join(dmi_fields.values())
        if dmi.is_virtualbox:
            kinds.append("VirtualBox")
        elif "QEMU" in joined or "KVM" in joined:
            kinds.append("KVM/QEMU")
        elif "VMware" in joined:
            kinds.append("VMware")
        elif "Microsoft" in joined:
            kinds.append("Hyper-V")
    cpuinfo = read_text(str(proc / "cpuinfo"), found) or ""
    hypervisor = any(
        line.startswith("flags") and " hypervisor" in line
        for line in cpuinfo.splitlines()
    )
    evidence.append(f"cpu hypervisor flag: {'yes' if hypervisor else 'no'}")
    if hypervisor and not kinds:
        kinds.append("a virtual machine (hypervisor flag)")
    osrelease = (read_text(str(proc / "sys/kernel/osrelease"), found) or "").strip()
    if "microsoft" in osrelease.lower():
        kinds.append("WSL2" if "wsl2" in osrelease.lower() else "WSL")
        evidence.append(f"kernel osrelease {osrelease!r}")
    for marker in cfg.container_markers:
        if os.path.exists(marker):
            content = (read_text(marker, found) or "").strip()
            kinds.append(f"container ({content or os.path.basename(marker)})")
            evidence.append(f"{marker} exists")
    detect = host.run_command(["systemd-detect-virt"], timeout=2)
    if detect.returncode is not None:
        evidence.append(f"systemd-detect-virt: {detect.stdout.strip() or 'none'}")
    found.summary = ", ".join(kinds) or "bare metal (no sign of virtualization)"
    found.data = {
        "kinds": kinds,
        "dmi": dmi_fields,
        "hypervisor_flag": hypervisor,
        "evidence": evidence,
    }
    found.text = "\n".join(evidence)
    return found


def mounts(host: Host, context: CollectContext) -> Found:
    from shipyard_doctor.host.mounts import mount_for, nearest_existing, read_mountinfo

    path = os.path.join(host.config.host.proc_dir, "self/mountinfo")
    found = Found()
    try:
        table = read_mountinfo(path)
    except OSError as exc:
        found.cannot_read(path, exc.strerror or str(exc))
        found.summary = "mount table not readable"
        return found
    dirs = [*LIB_DIRS, *host.config.host.lib_dirs, host.config.agent.lib_dir]
    rows: list[dict[str, Any]] = []
    for wanted in dict.fromkeys(dirs):
        real = os.path.realpath(nearest_existing(wanted))
        mount = mount_for(real, table)
        rows.append(
            {
                "dir": wanted,
                "exists": os.path.exists(wanted),
                "resolved": real,
                "mount": mount.describe() if mount else None,
                "read_only": mount.read_only if mount else None,
            }
        )
    ro = [r["dir"] for r in rows if r["read_only"]]
    found.summary = f"read-only: {', '.join(ro)}" if ro else "all lib dirs writable"
    found.data = {"lib_dirs": rows}
    found.text = "\n".join(
        f"{r['dir']}{'' if r['exists'] else ' (missing)'} -> {r['resolved']}: "
        f"{r['mount'] or 'no mount found'}"
        for r in rows
    )
    return found


def _plain(value: Any) -> Any:
    """dataclasses.asdict output made JSON-friendly (paths and tuples)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
