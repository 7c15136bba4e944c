"""``shipyard-doctor completion SHELL``: shell completion generated from the argument
parser itself (shtab), so every command and option, present and future, completes
without a runtime hook in the shell."""

from __future__ import annotations

import argparse

from shipyard_doctor.helpformat import HelpFormatter

SHELLS = ("bash", "zsh", "fish")

EPILOG = """\
examples (as root; then open a new shell):
  shipyard-doctor completion bash > /etc/bash_completion.d/shipyard-doctor
  shipyard-doctor completion zsh > /usr/local/share/zsh/site-functions/_shipyard-doctor
  shipyard-doctor completion fish > /etc/fish/completions/shipyard-doctor.fish
  source <(shipyard-doctor completion bash)   this bash session only
"""


def add_completion_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    completion = commands.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print the completion script for SHELL on stdout (generated "
        "from this program's own options); install it where your shell looks.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    completion.add_argument(
        "shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish"
    )


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for *shell*, generated from *parser*."""
    import shtab

    return str(shtab.complete(parser, shell=shell))
