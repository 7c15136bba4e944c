"""Fix agent-libs: link the missing soname to the closest compatible library, in a
writable dir, and make the agent's loader look there.

The 2014 user's fix was "a symlink and ldconfig" in /lib64, which CoreOS keeps on
read-only /usr. This fix puts the link in ``[agent] lib_dir`` (/opt/shipyard/lib) and
chooses how the loader finds it (domain.md §3):

* ld.so.conf.d + ldconfig, only where that works: the conf dir and the cache are
  writable, ``[host] ld_so_conf`` includes the conf dir (CoreOS's includes only
  /usr/lib/ld.so.conf.d), and every linked library calls itself by the missing name
  (ldconfig lists a library under its own DT_SONAME, never under a link's name, so a
  libdevmapper.so.1.02.1 link to libdevmapper.so.1.02 never reaches the cache);
* otherwise a start script for the agent alone, ``<lib_dir>/../bin/
  shipyard-agent-wrapper``, that sets LD_LIBRARY_PATH (searched by file name).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard_doctor.fixing import (
    Fix,
    FixOptions,
    Plan,
    RunCommand,
    Step,
    Symlink,
    WriteFile,
)
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.fixengine.journal import RunJournal
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result

CONF_NAME = "shipyard-doctor.conf"
ABI_RISK = (
    "a link to another version of a library is not guaranteed to be ABI-compatible: "
    "a missing symbol stops the agent with 'relocation error … symbol … not defined'"
)


@record
class RebuildLdCache(RunCommand):
    """ldconfig, with the old cache kept in the journal: undo restores it
    byte-identical. (Undo runs inverses before it restores files, so an inverse
    ldconfig would still see our conf file.)"""

    cache: str = ""

    def apply(self, journal: RunJournal) -> None:
        journal.backup(self.cache)
        super().apply(journal)


class AgentLibsFix(Fix):
    id = "agent-libs"
    title = "Link the missing library in [agent] lib_dir and point the agent at it"
    repairs = ("agent-libs",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.host.agent import wrapper_path, wrapper_script
        from shipyard_doctor.host.agentlibs import AgentLibsEvidence

        found = result.evidence
        if not isinstance(found, AgentLibsEvidence):
            return self._none(f"nothing to do: {result.summary}")
        binary, lib_dir = found.binary, host.config.agent.lib_dir
        missing = found.missing
        interp = found.elf.interpreter
        if found.interpreter_missing:
            return self._none(
                f"the program interpreter {interp} is missing: this binary was built "
                "for another system; a library link cannot fix that",
            )
        lost = [m.soname for m in missing if not m.usable]
        if not missing or lost:
            names = ", ".join(lost) or "the libraries it needs"
            return self._none(
                f"no compatible library is installed for {names}: install the "
                "package that ships it, or upgrade to shipyard-agent v0.3.0+",
            )
        if not _writable(os.path.join(lib_dir, missing[0].soname)):
            return self._none(
                f"[agent] lib_dir {lib_dir} is not writable here: set it to a dir on a "
                "writable filesystem such as /opt or /var (see lib-readonly)",
            )
        links = {m.soname: m.usable[0] for m in missing}
        steps: list[Step] = [
            Symlink(os.path.join(lib_dir, soname), target)
            for soname, target in links.items()
        ]
        shown = ", ".join(f"{s} → {t}" for s, t in links.items())
        blocked = _ld_so_conf_blocked(host, links)
        if not blocked:
            conf = os.path.join(host.config.host.ld_so_conf_dir, CONF_NAME)
            steps += _ld_so_conf_steps(host, conf, lib_dir, links)
            return Plan(
                self.id,
                "agent-libs",
                f"link {shown} in {lib_dir}, list {lib_dir} in {conf} and rebuild "
                "the loader cache",
                tuple(steps),
                risk=ABI_RISK,
                notes=(
                    f"every program on this host now finds {', '.join(links)} through "
                    f"the loader cache {host.config.host.ld_so_cache}",
                    _container_note(),
                ),
            )
        wrapper = wrapper_path(lib_dir)
        if not _writable(wrapper):
            return self._none(
                f"{os.path.dirname(wrapper)} is not writable: no place for the start "
                f"script; start the agent with LD_LIBRARY_PATH={lib_dir} {binary}",
            )
        steps.append(WriteFile(wrapper, wrapper_script(binary, lib_dir), mode=0o755))
        return Plan(
            self.id,
            "agent-libs",
            f"link {shown} in {lib_dir} and write {wrapper}, which starts {binary} "
            f"with LD_LIBRARY_PATH={lib_dir}",
            tuple(steps),
            risk=ABI_RISK,
            notes=(
                f"start the agent with {wrapper} instead of {binary} (e.g. in its "
                "unit's ExecStart); started directly, it still cannot find "
                f"{', '.join(links)}",
                "not through ld.so.conf.d: " + "; ".join(blocked),
                _container_note(),
            ),
        )

    def _none(self, summary: str) -> Plan:
        return Plan(self.id, "agent-libs", summary, notes=(_container_note(),))


def _writable(path: str) -> bool:
    """Could this user create the file ``path`` (mkdir -p its dir first)? access(2)
    also says no on a read-only filesystem (EROFS)."""
    from shipyard_doctor.host.mounts import nearest_existing

    return os.access(nearest_existing(os.path.dirname(path) or "/"), os.W_OK)


def _ld_so_conf_blocked(host: Host, links: dict[str, str]) -> list[str]:
    """Why the ld.so.conf.d route would not make the loader find ``links``; [] if
    it would."""
    from shipyard_doctor.host.elf import ElfError, read_elf

    reasons = []
    for soname, target in links.items():
        try:
            own = read_elf(target).soname
        except (OSError, ElfError):
            own = None
        if own != soname:
            reasons.append(
                f"{target} calls itself {own or 'nothing (no DT_SONAME)'}, so "
                f"ldconfig would never list it as {soname}"
            )
    hostcfg = host.config.host
    conf = os.path.join(hostcfg.ld_so_conf_dir, CONF_NAME)
    includes = ld_so_conf_includes(hostcfg.ld_so_conf)
    if not any(included(conf, pattern) for pattern in includes):
        reasons.append(
            f"{hostcfg.ld_so_conf} does not include {hostcfg.ld_so_conf_dir} "
            f"(it includes {', '.join(includes) or 'nothing'})"
        )
    for path in (conf, hostcfg.ld_so_cache):
        if not _writable(path):
            reasons.append(f"{os.path.dirname(path)} is not writable")
    if host.find_binary("ldconfig") is None:
        reasons.append("no ldconfig on this host")
    return reasons


def _ld_so_conf_steps(
    host: Host, conf: str, lib_dir: str, links: dict[str, str]
) -> list[Step]:
    cache = host.config.host.ld_so_cache
    ldconfig = host.find_binary("ldconfig") or "ldconfig"
    # -X: no links made or changed anywhere else; the journal knows only ours.
    argv = (ldconfig, "-X", "-f", host.config.host.ld_so_conf, "-C", cache)
    wanted = {soname: os.path.join(lib_dir, soname) for soname in links}
    return [
        WriteFile(
            conf,
            f"# Libraries for shipyard-agent (shipyard-doctor fix agent-libs)\n"
            f"{lib_dir}\n",
        ),
        RebuildLdCache(
            argv,
            f"rebuild the loader cache so it lists {lib_dir}; undo puts the old "
            "cache back",
            done_when=lambda: _cache_lists(cache, wanted),
            cache=cache,
        ),
    ]


def _cache_lists(cache: str, wanted: dict[str, str]) -> bool:
    """Does the cache send every soname to its link in lib_dir already?"""
    from shipyard_doctor.host.ldso import LdCacheError, read_ld_so_cache

    try:
        found = read_ld_so_cache(cache)
    except LdCacheError:
        return False
    return found is not None and all(
        any(e.path == path for e in found.lookup(soname))
        for soname, path in wanted.items()
    )


def ld_so_conf_includes(path: str, depth: int = 0) -> list[str]:
    """Every ``include`` pattern ldconfig follows from ``path``, made absolute as
    glibc does (relative to the including file's dir), nested includes too."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    patterns: list[str] = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) < 2 or words[0] != "include":
            continue
        for pattern in words[1:]:
            if not pattern.startswith("/"):
                pattern = os.path.join(os.path.dirname(path), pattern)
            patterns.append(pattern)
            if depth < 8:  # glibc has no limit; a loop of includes must not hang us
                for nested in sorted(glob.glob(pattern)):
                    patterns += ld_so_conf_includes(nested, depth + 1)
    return patterns


def included(conf: str, pattern: str) -> bool:
    """Would ``include pattern`` read ``conf`` (which may not exist yet)?"""
    same_dir = os.path.realpath(os.path.dirname(pattern)) == os.path.realpath(
        os.path.dirname(conf)
    )
    return same_dir and fnmatch.fnmatchcase(
        os.path.basename(conf), os.path.basename(pattern)
    )


def _container_note() -> str:
    from shipyard_doctor.host.agent import CONTAINER

    return f"or, with no host libraries at all, the agent container: {CONTAINER}"
