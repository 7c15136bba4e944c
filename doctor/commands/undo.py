"""`shipyard-doctor undo [RUN]` and `undo --list`."""

from __future__ import annotations

from shipyard_doctor.context import Environment
from shipyard_doctor.options import UndoOptions, effective_config
from shipyard_doctor.outcome import CommandOutcome


def undo_command(options: UndoOptions, env: Environment) -> CommandOutcome:
    from shipyard_doctor.fixengine.journal import Journal
    from shipyard_doctor.render import fixruns

    config = effective_config(options.config, env.environ)
    journal = Journal(config.fix.journal_dir)
    if options.list_runs:
        runs = [run for run in journal.runs() if run.fixes]
        fixruns.render_runs(runs, journal.directory, env.stdout)
        return CommandOutcome()
    run_id, lines = journal.undo(options.run, options.command)
    fixruns.render_undo(run_id, lines, env.stdout)
    return CommandOutcome()
