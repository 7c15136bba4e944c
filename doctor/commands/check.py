"""`shipyard-doctor check`: run the checks, render the report, offer fixes (--fix)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard_doctor import __version__
from shipyard_doctor.context import Environment
from shipyard_doctor.errors import UsageError
from shipyard_doctor.options import CheckOptions, effective_config
from shipyard_doctor.outcome import CommandOutcome

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
    from shipyard_doctor.fixengine.fixrun import FixReport
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import CheckRun
    from shipyard_doctor.registry import Registry
    from shipyard_doctor.runner import Selection


def check_command(options: CheckOptions, env: Environment) -> CommandOutcome:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.registry import discover
    from shipyard_doctor.runner import Selection, order_checks

    config = effective_config(options.config, env.environ)
    registry = discover()
    known = registry.known_check_ids
    only = _ids(options.only, known, "--only")
    in_file = f" of {config.source}" if config.source else ""
    skip = {
        **{
            i: "skipped by [checks] skip"
            for i in _ids(config.checks.skip, known, f"[checks] skip{in_file}")
        },
        **{i: "skipped by --skip" for i in _ids(options.skip, known, "--skip")},
    }
    ignore = {
        *_ids(config.checks.ignore, known, f"[checks] ignore{in_file}"),
        *_ids(options.ignore, known, "--ignore"),
    }
    selection = Selection(
        ids=order_checks(registry, only or known),
        skipped=skip,
        ignored=frozenset(ignore),
    )
    with Host(config, env.environ, probe_dhcp=_interfaces(options.probe_dhcp)) as host:
        return _check_on(host, config, registry, selection, options, env)


def _check_on(
    host: Host,
    config: Config,
    registry: Registry,
    selection: Selection,
    options: CheckOptions,
    env: Environment,
) -> CommandOutcome:
    from shipyard_doctor.model import Report

    runs = _run(registry, selection, host, config.checks.timeout, options, env)
    report = Report(__version__, host.summary(), tuple(runs))
    if options.json:
        from shipyard_doctor.render import json as render

        fixes = _fixes(options, env, registry, runs, host)
        render.render_report(
            report, env.stdout, fixes if options.offers_fixes else None
        )
        return CommandOutcome(runs=runs, fixes=fixes)
    from shipyard_doctor.render import console, text

    view = console if env.rich_output else text
    view.render_report(
        report,
        env.stdout,
        verbose=options.verbose,
        offer_fixes=not options.offers_fixes,
    )
    fixes = _fixes(options, env, registry, runs, host)
    if options.offers_fixes:
        view.render_fix_reports(fixes, env.stdout)
    return CommandOutcome(runs=runs, fixes=fixes)


def _fixes(
    options: CheckOptions,
    env: Environment,
    registry: Registry,
    runs: Sequence[CheckRun],
    host: Host,
) -> list[FixReport]:
    if not options.offers_fixes:
        return []
    from shipyard_doctor.commands.fix import fix_after_check

    return fix_after_check(
        options.config, options.fixing, options.json, env, registry, runs, host
    )


def _ids(values: Sequence[str], known: Sequence[str], flag: str) -> list[str]:
    from shipyard_doctor.validate import check_ids, shown

    try:
        ids = check_ids(values, flag)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for check_id in ids:
        if check_id not in known:
            raise UsageError(
                f"unknown check id {shown(check_id)} in {flag} "
                f"(known: {', '.join(known)})"
            )
    return ids


def _interfaces(names: Sequence[str]) -> tuple[str, ...]:
    from shipyard_doctor.validate import interface_name

    try:
        return tuple(interface_name(name) for name in names)
    except ValueError as exc:
        raise UsageError(f"--probe-dhcp {exc}") from None


def _run(
    registry: Registry,
    selection: Selection,
    host: Host,
    timeout: float,
    options: CheckOptions,
    env: Environment,
) -> list[CheckRun]:
    from shipyard_doctor.runner import run_checks

    if options.json or not env.rich_output:
        return run_checks(registry, selection, host, timeout)
    from shipyard_doctor.render.console import check_spinner

    with check_spinner(selection.ids, env.stderr) as progress:
        return run_checks(registry, selection, host, timeout, progress)
