"""The environment the CLI runs in: streams, terminal facts, colour preference.

Injected into ``main`` so tests (and embedders) can capture output without touching
``sys.stdout``; renderers decide rich versus plain from it, never from globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from shipyard_doctor.records import field, mutable_record


@mutable_record
class Environment:
    """The streams, terminal facts and environment variables the CLI runs with."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout_isatty: bool | None = None
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdin_isatty: bool | None = None  # can the user be asked (fix confirmations)?

    def __post_init__(self) -> None:
        if self.stdout_isatty is None:
            isatty = getattr(self.stdout, "isatty", None)
            self.stdout_isatty = bool(isatty and isatty())
        if self.stdin_isatty is None:
            isatty = getattr(self.stdin, "isatty", None)
            self.stdin_isatty = bool(self.stdin is not None and isatty and isatty())

    @property
    def rich_output(self) -> bool:
        """Rich, coloured output only on a terminal and when NO_COLOR is unset."""
        return bool(self.stdout_isatty) and not self.environ.get("NO_COLOR")
