"""Fix lib-readonly: never remount a system dir; make the writable route ready.

A read-only /usr (and /lib64 in it) is CoreOS's and Flatcar's design: a verified A/B
partition that the next update replaces, so a remount is refused or lost (domain.md
§4). What the agent needs goes in ``[agent] lib_dir`` (/opt/shipyard/lib) instead:
this fix creates that dir, with a README saying what it is for, so ``fix
agent-libs`` (or the user, with LD_LIBRARY_PATH) can put libraries there. Undo
removes the README and the dirs it created, if nothing else was put there.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shipyard_doctor.fixing import Fix, FixOptions, Plan, WriteFile

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Result

DESIGN = (
    "the read-only dirs stay read-only: never remount /usr or a library dir "
    "read-write (on CoreOS/Flatcar /usr is a verified partition replaced at every "
    "update); libraries the agent needs belong in a writable dir such as /opt"
)


class LibReadonlyFix(Fix):
    id = "lib-readonly"
    title = "Create [agent] lib_dir, the writable place for agent libraries"
    repairs = ("lib-readonly",)

    def plan(self, result: Result, host: Host, options: FixOptions) -> Plan:
        from shipyard_doctor.host.mounts import LibPlaces, nearest_existing

        lib_dir = host.config.agent.lib_dir
        found = result.evidence
        if not isinstance(found, LibPlaces):
            return self._plan(f"nothing to do: {result.summary}")
        names = ", ".join(p.path for p in found.read_only) or "the library dirs"
        parent = nearest_existing(lib_dir)
        read_only = found.lib_dir.read_only
        if read_only or not os.access(parent, os.W_OK):
            state = "read-only" if read_only else "not writable by you"
            return self._plan(
                f"no steps: {lib_dir} cannot be created ({parent} is {state}): set "
                "[agent] lib_dir to a dir on a writable filesystem (e.g. "
                "/opt/shipyard/lib or /var/lib/shipyard/lib), or run the agent as a "
                "container (shipyard/agent)",
            )
        if os.path.isdir(lib_dir):
            return self._plan(
                f"{lib_dir} exists and is writable: put the agent's libraries there "
                f"(fix agent-libs does); {names} stay read-only by design",
            )
        readme = os.path.join(lib_dir, "README")
        return self._plan(
            f"create {lib_dir} for the libraries shipyard-agent needs, instead of "
            f"{names}",
            WriteFile(readme, _readme(lib_dir, names)),
        )

    def _plan(self, summary: str, *steps: WriteFile) -> Plan:
        return Plan(
            self.id,
            "lib-readonly",
            summary,
            steps,
            notes=(
                DESIGN,
                "next: `shipyard-doctor fix agent-libs` links a missing library here "
                "and starts the agent with it",
            ),
        )


def _readme(lib_dir: str, readonly: str) -> str:
    return (
        f"{lib_dir}: shared libraries for shipyard-agent that this system lacks.\n"
        "\n"
        f"Created by `shipyard-doctor fix lib-readonly` because {readonly} are "
        "read-only.\n"
        "Never remount them read-write: on CoreOS/Flatcar /usr is a verified A/B\n"
        "partition, replaced at every update. Put the libraries here and start the\n"
        f"agent with LD_LIBRARY_PATH={lib_dir} (`shipyard-doctor fix agent-libs`\n"
        "does both). `shipyard-doctor undo` removes this dir again if it is empty.\n"
    )
