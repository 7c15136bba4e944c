"""The command line: parse, configure, run, render, exit. Nothing else lives here."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from shipyard_doctor import __version__
from shipyard_doctor.cli_fix import add_fix_arguments
from shipyard_doctor.context import Environment
from shipyard_doctor.errors import DoctorError, ExitCode, UsageError

if TYPE_CHECKING:  # the real imports are lazy, to keep --help fast
    from shipyard_doctor.config import Config
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import CheckRun
    from shipyard_doctor.registry import Registry
    from shipyard_doctor.runner import Selection

EPILOG = """\
examples:
  shipyard-doctor check                      check this host for Shipyard v1
  shipyard-doctor check --only ports -v      one check, with all its evidence
  shipyard-doctor check --json > doctor.json machine-readable result
  shipyard-doctor check --ignore ports       show port conflicts, but exit 0
  shipyard-doctor check --docker-host tcp://127.0.0.1:4243
  shipyard-doctor list                       every check and the fixes for it
  shipyard-doctor check --fix                offer the fixes, asking before each
  shipyard-doctor check --fix --dry-run      show what the fixes would change
  shipyard-doctor fix docker-tcp --yes       run one fix without asking
  shipyard-doctor undo                       restore what the last fix run changed

exit codes: 0 no failure or error (warnings allowed), 1 a check failed or errored
(after fixing: still fails), 2 usage or configuration error, 3 fixes planned but not
applied (no terminal to ask and no --yes), 4 another fix run holds the lock,
70 internal error, 130 interrupted.
configuration: --config PATH, else $SHIPYARD_DOCTOR_CONFIG, else
/etc/shipyard-doctor/config.toml (see README.md).
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="configuration file (TOML)")
    common.add_argument(
        "--docker-host",
        metavar="URL",
        help="Docker API endpoint, e.g. unix:///var/run/docker.sock or "
        "tcp://127.0.0.1:2375 (overrides [docker] host and DOCKER_HOST)",
    )
    common.add_argument(
        "--debug", action="store_true", help="show tracebacks for internal errors"
    )

    parser = argparse.ArgumentParser(
        prog="shipyard-doctor",
        description="Find (and explain) the Docker host problems that break a "
        "Shipyard install.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"shipyard-doctor {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        parents=[common],
        help="run the checks and report",
        description="Run the checks concurrently and report what is wrong and what "
        "to do about it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--only",
        metavar="IDS",
        action="append",
        default=[],
        help="run only these checks (comma-separated; their dependencies run too)",
    )
    check.add_argument(
        "--skip",
        metavar="IDS",
        action="append",
        default=[],
        help="do not run these checks (comma-separated)",
    )
    check.add_argument(
        "--ignore",
        metavar="IDS",
        action="append",
        default=[],
        help="run and show these checks, but their failures do not fail the exit code",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (schema in README.md)",
    )
    check.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the evidence of every check, and timings",
    )
    check.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        help="per-check timeout (overrides [checks] timeout)",
    )
    check.add_argument(
        "--probe-dhcp",
        metavar="IFACE",
        action="append",
        default=[],
        help="send a DHCPDISCOVER on this interface and report whether a server "
        "answers (never done unless asked; repeatable)",
    )
    check.add_argument(
        "--stack",
        metavar="NAME",
        help="the Shipyard stack to check for (overrides [stack] name)",
    )

    check.add_argument(
        "--fix",
        action="store_true",
        help="offer the fixes for what failed: show each plan and ask "
        "(--yes and --dry-run imply --fix)",
    )
    add_fix_arguments(check)

    fix = commands.add_parser(
        "fix",
        parents=[common],
        help="run one fix (after running its checks)",
        description="Run the checks a fix repairs, then plan, confirm and apply it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fix.add_argument("fix_id", metavar="ID", help="the fix to run (see `list`)")
    fix.add_argument("--json", action="store_true", help="print JSON")
    add_fix_arguments(fix)

    undo = commands.add_parser(
        "undo",
        parents=[common],
        help="restore what a fix run changed",
        description="Restore the files a fix run changed (byte-identical) and reverse "
        "the steps that have an inverse; list what cannot be reversed.",
    )
    undo.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="the run to undo (default: the newest not yet undone)",
    )
    undo.add_argument("--list", action="store_true", help="list the recorded runs")

    listing = commands.add_parser(
        "list", parents=[common], help="list every check and the fixes for it"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    env = env or Environment()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(env.stdout)
        return ExitCode.USAGE
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "list":
            return _list(args, env)
        if args.command in ("fix", "undo"):
            from shipyard_doctor import cli_fix

            command = (
                cli_fix.fix_command if args.command == "fix" else (cli_fix.undo_command)
            )
            return command(args, env)
        return _check(args, env)
    except DoctorError as exc:
        print(f"shipyard-doctor: error: {exc}", file=env.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("shipyard-doctor: interrupted", file=env.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK  # output went to a pager or head that closed early
    except Exception as exc:
        if args.debug:
            traceback.print_exc(file=env.stderr)
        print(
            f"shipyard-doctor: internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)",
            file=env.stderr,
        )
        return ExitCode.INTERNAL


def _positive_float(text: str) -> float:
    from shipyard_doctor.validate import seconds, shown

    try:
        return seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, got {shown(text)}") from None


def load_effective_config(args: argparse.Namespace, env: Environment) -> Config:
    from shipyard_doctor.config import load_config
    from shipyard_doctor.host.dockerapi import parse_endpoint
    from shipyard_doctor.stacks import load_stack
    from shipyard_doctor.validate import docker_url, shown

    config = load_config(args.config, env.environ)
    if args.docker_host is not None:
        try:
            docker_url(args.docker_host)  # a bad URL is a usage error, now
        except ValueError as exc:
            raise UsageError(f"--docker-host {shown(args.docker_host)} {exc}") from None
        docker = replace(
            config.docker, host=args.docker_host, host_origin="--docker-host"
        )
        config = replace(config, docker=docker)
    try:
        docker_url(config.docker.host)  # $DOCKER_HOST is checked here
    except ValueError as exc:
        origin = config.docker.host_origin
        raise UsageError(f"{origin} {shown(config.docker.host)} {exc}") from None
    parse_endpoint(config.docker.host)
    stack = getattr(args, "stack", None)
    if stack is not None and stack != config.stack.name:
        load_stack(stack)  # "" or an unknown name: a usage error naming the stacks
        # [stack.ports] names the file's stack's services: not this other stack's.
        config = replace(config, stack=replace(config.stack, name=stack, ports={}))
    if getattr(args, "timeout", None):
        config = replace(config, checks=replace(config.checks, timeout=args.timeout))
    return config


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


def _check(args: argparse.Namespace, env: Environment) -> int:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.model import Report
    from shipyard_doctor.registry import discover
    from shipyard_doctor.runner import Selection, order_checks

    config = load_effective_config(args, env)
    registry = discover()
    known = registry.known_check_ids
    only = _ids(args.only, known, "--only")
    in_file = f" of {config.source}" if config.source else ""
    skip = {
        **{
            i: "skipped by [checks] skip"
            for i in _ids(config.checks.skip, known, f"[checks] skip{in_file}")
        },
        **{i: "skipped by --skip" for i in _ids(args.skip, known, "--skip")},
    }
    ignore = {
        *_ids(config.checks.ignore, known, f"[checks] ignore{in_file}"),
        *_ids(args.ignore, known, "--ignore"),
    }
    selection = Selection(
        ids=order_checks(registry, only or known),
        skipped=skip,
        ignored=frozenset(ignore),
    )
    host = Host(config, env.environ, probe_dhcp=_interfaces(args.probe_dhcp))
    runs = _run(registry, selection, host, config.checks.timeout, args, env)
    report = Report(__version__, host.summary(), tuple(runs))
    fixing = args.fix or args.yes or args.dry_run
    if args.json:
        from shipyard_doctor.render import json as render

        fix_reports, code = (
            _fixes(args, env, registry, runs, host) if fixing else ([], None)
        )
        render.render_report(report, env.stdout, fix_reports if fixing else None)
    else:
        from shipyard_doctor.render import console, text

        view = console if env.rich_output else text
        view.render_report(report, env.stdout, verbose=args.verbose)
        if not fixing:
            return ExitCode.PROBLEMS if report.failed else ExitCode.OK
        fix_reports, code = _fixes(args, env, registry, runs, host)
        view.render_fix_reports(fix_reports, env.stdout)
    if code is not None:
        return code
    return ExitCode.PROBLEMS if report.failed and not fixing else ExitCode.OK


def _fixes(args, env, registry, runs, host):  # type: ignore[no-untyped-def]
    from shipyard_doctor.cli_fix import fix_after_check

    return fix_after_check(args, env, registry, runs, host)


def _run(
    registry: Registry,
    selection: Selection,
    host: Host,
    timeout: float,
    args: argparse.Namespace,
    env: Environment,
) -> list[CheckRun]:
    from shipyard_doctor.runner import run_checks

    if args.json or not env.rich_output:
        return run_checks(registry, selection, host, timeout)
    from rich.console import Console

    status_console = Console(file=env.stderr)
    with status_console.status(f"running {len(selection.ids)} checks…"):
        return run_checks(registry, selection, host, timeout)


def _list(args: argparse.Namespace, env: Environment) -> int:
    from shipyard_doctor.registry import discover

    registry = discover()
    if args.json:
        from shipyard_doctor.render import json as render

        render.render_list(registry, env.stdout, __version__)
    elif env.rich_output:
        from shipyard_doctor.render import console

        console.render_list(registry, env.stdout)
    else:
        from shipyard_doctor.render import text

        text.render_list(registry, env.stdout)
    return ExitCode.OK
