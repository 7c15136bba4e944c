"""`shipyard-doctor list`: every check and the fixes for it."""

from __future__ import annotations

from shipyard_doctor import __version__
from shipyard_doctor.context import Environment
from shipyard_doctor.options import ListOptions
from shipyard_doctor.outcome import CommandOutcome


def list_command(options: ListOptions, env: Environment) -> CommandOutcome:
    from shipyard_doctor.registry import discover

    registry = discover()
    if options.json:
        from shipyard_doctor.render import json as render

        render.render_list(registry, env.stdout, __version__)
    elif env.rich_output:
        from shipyard_doctor.render import console

        console.render_list(registry, env.stdout)
    else:
        from shipyard_doctor.render import text

        text.render_list(registry, env.stdout)
    return CommandOutcome()
