"""Where the Shipyard agent binary is, what it is, and how to start it.

Shared by the agent-libs check and the agent-libs and docker-tcp fixes. The agent is
never run just to be looked at: its version is read from the bytes of the binary.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import TYPE_CHECKING

from shipyard_doctor.host import files

#: A Go agent binary is tens of MiB; past this it is not one.
AGENT_LIMIT = 512 * 1024 * 1024

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

DEFAULT_BINARY = "/opt/shipyard/bin/shipyard-agent"
CONTAINER = (
    "docker run -d -v /var/run/docker.sock:/docker.sock -e IP=<this host's IP> "
    "-e URL=http://<shipyard host>:8000 -p 4500:4500 shipyard/agent"
)
WRAPPER_NAME = "shipyard-agent-wrapper"
_WRAPPER_PATH = re.compile(
    r"^export LD_LIBRARY_PATH=(.+)\$\{LD_LIBRARY_PATH:\+:\$LD_LIBRARY_PATH\}$", re.M
)
_WRAPPER_EXEC = re.compile(r'^exec (.+) "\$@"$', re.M)
AGENT_VERSION = re.compile(rb"(?<![\d.])v?(0\.\d{1,2}\.\d{1,2})(?![\d.])")


def find_agent_binary(host: Host) -> tuple[str | None, str]:
    """The agent's path and where it came from, or None and why there is none."""
    configured = host.config.agent.binary
    if configured:
        if os.path.isfile(configured):
            return configured, "[agent] binary"
        return None, f"[agent] binary {configured} does not exist: nothing to check"
    found = host.find_binary("shipyard-agent")
    if found:
        return found, "found on $PATH"
    if os.path.isfile(DEFAULT_BINARY):
        return DEFAULT_BINARY, "the default location"
    return None, (
        f"no shipyard-agent binary (not on $PATH, not at {DEFAULT_BINARY}, [agent] "
        "binary not set): nothing to check; the agent container needs no host libraries"
    )


def wrapper_path(lib_dir: str) -> str:
    """Where fix agent-libs writes the agent's start script: bin/ beside lib_dir
    (/opt/shipyard/bin/shipyard-agent-wrapper), writable where lib_dir is."""
    prefix = os.path.dirname(os.path.normpath(lib_dir))
    return os.path.join(prefix, "bin", WRAPPER_NAME)


def wrapper_script(binary: str, lib_dir: str) -> str:
    """A start script that puts ``lib_dir`` first on LD_LIBRARY_PATH for the agent
    only, the route that works where /usr is read-only (domain.md §3, option 2)."""
    return (
        "#!/bin/sh\n"
        f"# Starts {binary} with the libraries it needs from {lib_dir}.\n"
        "# Written by `shipyard-doctor fix agent-libs`; `shipyard-doctor undo` "
        "removes it.\n"
        "# Start the agent with this script (e.g. in its unit's ExecStart).\n"
        f"export LD_LIBRARY_PATH={shlex.quote(lib_dir)}"
        "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n"
        f'exec {shlex.quote(binary)} "$@"\n'
    )


def wrapper_lib_path(wrapper: str, binary: str) -> tuple[str, ...]:
    """The dirs ``wrapper`` (as wrapper_script writes it) puts first on
    LD_LIBRARY_PATH when it starts ``binary``; () when there is no such wrapper."""
    try:
        text = files.read_text(wrapper)
    except (OSError, UnicodeDecodeError):
        return ()
    path, start = _WRAPPER_PATH.search(text), _WRAPPER_EXEC.search(text)
    try:
        starts = start is not None and shlex.split(start.group(1)) == [binary]
        dirs = shlex.split(path.group(1)) if path else []
    except ValueError:
        return ()
    return tuple(dirs[0].split(":")) if starts and len(dirs) == 1 else ()


def agent_version(path: str) -> str | None:
    """The version string next to "Agent" in the binary, if exactly one is there
    (the agent is never run just to be looked at)."""
    try:
        data = files.read_bytes(path, AGENT_LIMIT)
    except OSError:
        return None
    windows = (
        data[max(0, hit.start() - 4096) : hit.end() + 4096]
        for hit in re.finditer(rb"Agent", data)
    )
    found = {m.group(1).decode() for w in windows for m in AGENT_VERSION.finditer(w)}
    return found.pop() if len(found) == 1 else None
