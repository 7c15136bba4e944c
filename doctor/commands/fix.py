"""Fixing: `shipyard-doctor fix ID` and the fixes `check --fix` offers, on top of
the fix engine (doctor/fixengine/fixrun.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TextIO

from shipyard_doctor.context import Environment
from shipyard_doctor.errors import UsageError
from shipyard_doctor.options import (
    ConfigOptions,
    FixCommandOptions,
    FixingOptions,
    effective_config,
)
from shipyard_doctor.outcome import CommandOutcome
from shipyard_doctor.validate import shown

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
    from shipyard_doctor.fixengine.fixrun import FixReport, FixSession
    from shipyard_doctor.fixing import Plan
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import CheckRun
    from shipyard_doctor.registry import Registry


class FixView(Protocol):
    """What the fix commands need of a renderer (render/console.py, render/text.py)."""

    def render_plan(self, plan: Plan, out: TextIO) -> None: ...

    def render_fix_reports(self, reports: Sequence[FixReport], out: TextIO) -> None: ...


def fix_view(env: Environment, json: bool) -> FixView:
    if env.rich_output and not json:
        from shipyard_doctor.render import console

        return console
    from shipyard_doctor.render import text

    return text


class Recheck:
    """Runs one check again on a fresh view of the host: configuration re-read (a fix
    may have changed it) and no cached facts."""

    def __init__(self, options: ConfigOptions, env: Environment, registry: Registry):
        self.options, self.env, self.registry = options, env, registry

    def config(self) -> Config:
        return effective_config(self.options, self.env.environ)

    def __call__(self, check_id: str) -> CheckRun:
        from shipyard_doctor.host.gateway import Host
        from shipyard_doctor.runner import Selection, order_checks, run_checks

        config = self.config()
        selection = Selection(order_checks(self.registry, [check_id]), {}, frozenset())
        with Host(config, self.env.environ) as host:
            runs = run_checks(self.registry, selection, host, config.checks.timeout)
        return next(run for run in runs if run.id == check_id)


def session(
    fixing: FixingOptions,
    json: bool,
    env: Environment,
    registry: Registry,
    recheck: Recheck,
) -> FixSession:
    from shipyard_doctor.fixengine.fixrun import FixSession, Mode
    from shipyard_doctor.fixengine.journal import Journal
    from shipyard_doctor.fixing import FixOptions
    from shipyard_doctor.render import fixruns

    if fixing.dry_run:
        mode = Mode.DRY_RUN
    elif fixing.yes:
        mode = Mode.YES
    elif env.stdin_isatty and not json:
        mode = Mode.ASK
    else:
        mode = Mode.NO_TTY
    view = fix_view(env, json)

    def show(plan: Plan) -> None:
        if not json:
            view.render_plan(plan, env.stdout)

    def confirm(plan: Plan) -> bool:
        fixruns.render_question(plan, env.stdout)
        return env.stdin.readline().strip().lower() in ("y", "yes")

    return FixSession(
        registry=registry,
        journal=Journal(recheck.config().fix.journal_dir),
        options=FixOptions(
            stop_conflicting=fixing.stop_conflicting,
            disable_stopped=fixing.disable_stopped,
        ),
        mode=mode,
        recheck=recheck,
        command=fixing.command,
        show=show,
        confirm=confirm,
    )


def fix_after_check(
    config: ConfigOptions,
    fixing: FixingOptions,
    json: bool,
    env: Environment,
    registry: Registry,
    runs: Sequence[CheckRun],
    host: Host,
) -> list[FixReport]:
    """Offer the fixes for ``runs`` (`check --fix`)."""
    recheck = Recheck(config, env, registry)
    with session(fixing, json, env, registry, recheck) as fixes:
        return fixes.fix_all(runs, host)


def fix_command(options: FixCommandOptions, env: Environment) -> CommandOutcome:
    """`shipyard-doctor fix ID`: run the checks that fix repairs, then the fix."""
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.registry import discover
    from shipyard_doctor.render import fixruns
    from shipyard_doctor.runner import Selection, order_checks, run_checks

    registry = discover()
    if options.fix_id not in registry.fixes:
        known = ", ".join(sorted(registry.fixes)) or "none installed"
        raise UsageError(f"unknown fix id {shown(options.fix_id)} (known: {known})")
    plugin = registry.fixes[options.fix_id]
    config = effective_config(options.config, env.environ)
    with Host(config, env.environ) as host:
        selection = Selection(order_checks(registry, plugin.repairs), {}, frozenset())
        checked = run_checks(registry, selection, host, config.checks.timeout)
        runs = [r for r in checked if r.id in plugin.repairs]
        # A check it needs that failed or errored (a daemon that does not answer),
        # or its own check erring, is no "nothing to fix": the fix cannot even be
        # planned until that check passes.
        blocking = [
            r
            for r in checked
            if r.status.is_problem
            and (r.id not in plugin.repairs or r.status.value == "error")
        ]
        failing = [r for r in runs if r.status.value in ("warning", "failure")]
        reports: list[FixReport] = []
        if failing and not blocking:
            recheck = Recheck(options.config, env, registry)
            with session(options.fixing, options.json, env, registry, recheck) as fixes:
                reports = [fixes.fix_one(options.fix_id, run, host) for run in failing]
    shown_runs = checked if blocking else runs
    if options.json:  # one document, whatever happened
        from shipyard_doctor.render import json as render

        render.render_fix_command(
            options.fix_id, shown_runs, reports, env.stdout, blocking
        )
    elif blocking:
        fixruns.render_must_pass_first(options.fix_id, blocking, env.stdout)
    elif not failing:
        fixruns.render_nothing_to_fix(runs, env.stdout)
    else:
        fix_view(env, options.json).render_fix_reports(reports, env.stdout)
    return CommandOutcome(runs=shown_runs, fixes=reports)
