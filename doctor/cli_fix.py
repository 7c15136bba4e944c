"""The fix commands: `check --fix`, `fix ID` and `undo`, on top of doctor/fixrun.py."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard_doctor.context import Environment
from shipyard_doctor.errors import ExitCode, UsageError
from shipyard_doctor.validate import shown

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
    from shipyard_doctor.fixengine.fixrun import FixReport, FixSession
    from shipyard_doctor.fixing import Plan
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import CheckRun
    from shipyard_doctor.registry import Registry


def add_fix_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y", "--yes", action="store_true", help="apply the fixes without asking"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only show what the fixes would do"
    )
    parser.add_argument(
        "--stop-conflicting",
        action="store_true",
        help="ports: allow stopping the foreign processes that hold "
        "Shipyard's ports (each is named first)",
    )


def session(
    args: argparse.Namespace,
    env: Environment,
    registry: Registry,
    reload: Recheck,
) -> FixSession:
    from shipyard_doctor.fixengine.fixrun import FixSession, Mode
    from shipyard_doctor.fixengine.journal import Journal
    from shipyard_doctor.fixing import FixOptions

    config = reload.config()
    if args.dry_run:
        mode = Mode.DRY_RUN
    elif args.yes:
        mode = Mode.YES
    elif env.stdin_isatty and not args.json:
        mode = Mode.ASK
    else:
        mode = Mode.NO_TTY
    view = _view(args, env)
    return FixSession(
        registry=registry,
        journal=Journal(config.fix.journal_dir),
        options=FixOptions(stop_conflicting=args.stop_conflicting),
        mode=mode,
        recheck=reload,
        command=["shipyard-doctor", *args.argv],
        show=(lambda plan: None)
        if args.json
        else (lambda plan: view.render_plan(plan, env.stdout)),
        confirm=lambda plan: _ask(env, plan),
    )


class Recheck:
    """Runs one check again on a fresh view of the host: configuration re-read (a fix
    may have changed it) and no cached facts."""

    def __init__(self, args: argparse.Namespace, env: Environment, registry: Registry):
        self.args, self.env, self.registry = args, env, registry

    def config(self) -> Config:
        from shipyard_doctor.cli import load_effective_config

        return load_effective_config(self.args, self.env)

    def __call__(self, check_id: str) -> CheckRun:
        from shipyard_doctor.host.gateway import Host
        from shipyard_doctor.runner import Selection, order_checks, run_checks

        config = self.config()
        selection = Selection(order_checks(self.registry, [check_id]), {}, frozenset())
        host = Host(config, self.env.environ)
        runs = run_checks(self.registry, selection, host, config.checks.timeout)
        return next(run for run in runs if run.id == check_id)


def fix_after_check(
    args: argparse.Namespace,
    env: Environment,
    registry: Registry,
    runs: Sequence[CheckRun],
    host: Host,
) -> tuple[list[FixReport], ExitCode | None]:
    """Offer the fixes for ``runs``; the exit code when fixing decides it."""
    with session(args, env, registry, Recheck(args, env, registry)) as fixes:
        reports = fixes.fix_all(runs, host)
    return reports, _exit_code(reports, runs)


def fix_command(args: argparse.Namespace, env: Environment) -> int:
    """`shipyard-doctor fix ID`: run the checks that fix repairs, then the fix."""
    from shipyard_doctor.cli import load_effective_config
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.registry import discover
    from shipyard_doctor.runner import Selection, order_checks, run_checks

    registry = discover()
    if args.fix_id not in registry.fixes:
        known = ", ".join(sorted(registry.fixes)) or "none installed"
        raise UsageError(f"unknown fix id {shown(args.fix_id)} (known: {known})")
    plugin = registry.fixes[args.fix_id]
    config = load_effective_config(args, env)
    host = Host(config, env.environ)
    selection = Selection(order_checks(registry, plugin.repairs), {}, frozenset())
    runs = [
        r
        for r in run_checks(registry, selection, host, config.checks.timeout)
        if r.id in plugin.repairs
    ]
    view = _view(args, env)
    failing = [r for r in runs if r.status.value in ("warning", "failure")]
    if not failing:
        states = ", ".join(f"{r.id} {r.status.value}: {r.result.summary}" for r in runs)
        env.stdout.write(f"nothing to fix: {states}\n")
        return ExitCode.PROBLEMS if any(r.status.is_problem for r in runs) else 0
    with session(args, env, registry, Recheck(args, env, registry)) as fixes:
        reports = [fixes.fix_one(args.fix_id, run, host) for run in failing]
    if args.json:
        import json

        json.dump({"fixes": [r.to_dict() for r in reports]}, env.stdout, indent=2)
        env.stdout.write("\n")
    else:
        view.render_fix_reports(reports, env.stdout)
    return _exit_code(reports, runs) or ExitCode.OK


def undo_command(args: argparse.Namespace, env: Environment) -> int:
    from shipyard_doctor.cli import load_effective_config
    from shipyard_doctor.fixengine.journal import Journal

    journal = Journal(load_effective_config(args, env).fix.journal_dir)
    if args.list:
        runs = [r for r in journal.runs() if r["fixes"]]
        for run in runs:
            fixes = ", ".join(f"{f['fix']} {f['status']}" for f in run["fixes"])
            undone = " (undone)" if run.get("undone") else ""
            env.stdout.write(f"{run['run']}  {run['started']}  {fixes}{undone}\n")
        if not runs:
            env.stdout.write(f"no fix runs in {journal.directory}\n")
        return ExitCode.OK
    run_id, lines = journal.undo(args.run, ["shipyard-doctor", *args.argv])
    env.stdout.write(f"undid fix run {run_id}\n")
    for line in lines:
        env.stdout.write(f"  {line}\n")
    return ExitCode.OK


def _exit_code(
    reports: Sequence[FixReport], runs: Sequence[CheckRun]
) -> ExitCode | None:
    if any(r.outcome.value == "not-applied" for r in reports):
        return ExitCode.NOT_APPLIED
    fixed = {
        r.check_id: r.recheck
        for r in reports
        if r.recheck is not None and r.outcome.value == "applied"
    }
    for run in runs:
        final = fixed.get(run.id) or run
        if final.status.is_problem and not run.ignored:
            return ExitCode.PROBLEMS
    return None


def _ask(env: Environment, plan: Plan) -> bool:
    env.stdout.write(f"apply fix {plan.fix_id}? [y/N] ")
    env.stdout.flush()
    answer = env.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _view(args: argparse.Namespace, env: Environment):  # type: ignore[no-untyped-def]
    if env.rich_output and not getattr(args, "json", False):
        from shipyard_doctor.render import console

        return console
    from shipyard_doctor.render import text

    return text
