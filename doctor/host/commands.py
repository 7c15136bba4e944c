"""Running external read-only commands (iptables-save, journalctl, systemctl, ...).

Every command is time-bounded and never raises for the usual failures: a missing
binary, a timeout or a non-zero exit are data a check can explain to the user.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None  # None: not found or timed out
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # why it did not run to completion

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        if self.error:
            return f"{' '.join(self.argv)}: {self.error}"
        first = (self.stderr or self.stdout).strip().splitlines()
        return f"{' '.join(self.argv)}: exit {self.returncode}" + (
            f": {first[0]}" if first else ""
        )


def run(
    argv: Sequence[str], timeout: float, environ: Mapping[str, str]
) -> CommandResult:
    # Tools such as iptables-save live in sbin, which a normal user's PATH lacks.
    path = f"{environ.get('PATH', '')}:{SYSTEM_PATH}"
    binary = shutil.which(argv[0], path=path)
    if binary is None:
        return CommandResult(tuple(argv), None, error="not installed")
    env = {**environ, "LC_ALL": "C", "PATH": path}
    try:
        done = subprocess.run(
            [binary, *argv[1:]],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), None, error=f"timed out after {timeout:g} s")
    except OSError as exc:
        return CommandResult(tuple(argv), None, error=exc.strerror or str(exc))
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)
