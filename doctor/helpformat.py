"""argparse's help formatter for every parser of the CLI, without ``shutil``.

``argparse.HelpFormatter`` imports ``shutil`` (and with it bz2, lzma, fnmatch) to read
the terminal's width, and argparse makes a formatter for every ``add_argument``: so
building the parser cost every command ~2 ms before it did anything. This one finds
the width as ``shutil.get_terminal_size`` does (``COLUMNS``, then the terminal, then
80 columns) and keeps argparse's layout: descriptions and epilogs as written.
"""

from __future__ import annotations

import argparse
import os
import sys


def terminal_columns() -> int:
    """The terminal's width in columns, as ``shutil.get_terminal_size().columns``."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's RawDescriptionHelpFormatter, its width found without shutil."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:  # as argparse: the terminal's width less a margin of 2
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)
