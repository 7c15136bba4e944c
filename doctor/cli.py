"""The command line: parse, turn the flags into typed options, run, exit.

The only module that sees argparse: :func:`to_options` turns the command line
into the frozen option dataclasses of doctor/options.py once; the commands
(doctor/commands/) take those and return an outcome, which
:func:`shipyard_doctor.outcome.exit_code` turns into the exit code.
"""

from __future__ import annotations

import argparse
import gc
import sys

from shipyard_doctor import __version__
from shipyard_doctor.cli_deploy import add_deploy_parsers
from shipyard_doctor.completion import add_completion_command
from shipyard_doctor.helpformat import HelpFormatter

# `--help`, `--version` and a usage error need only argparse and the declarations
# above: the options, the environment and the exit-code map load once a command
# runs (the dataclasses they are built with cost more than all of argparse). Even
# `typing` (~2.5 ms) is not imported on that path: mypy takes any name
# TYPE_CHECKING as typing's, so modules the parser needs set it themselves.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from shipyard_doctor.context import Environment
    from shipyard_doctor.options import (
        CommandOptions,
        ConfigOptions,
        DeployCommandOptions,
        StatusCommandOptions,
        UndeployCommandOptions,
    )
    from shipyard_doctor.outcome import CommandOutcome

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
  shipyard-doctor fix docker-tcp --dry-run --json
                                             its plan as JSON (schema in README.md)
  shipyard-doctor fix ports --stop-conflicting --disable-stopped
                                             stop (and disable) what holds a port
  shipyard-doctor undo                       restore what the last fix run changed

exit codes: 0 no failure or error (warnings allowed), 1 a check failed or errored
(after fixing: still fails), 2 usage or configuration error, 3 fixes planned but not
applied (no terminal to ask and no --yes), 4 another fix run holds the lock,
70 internal error, 130 interrupted (Ctrl-C or SIGTERM; `undo` reverses a fix it
stopped).
configuration: --config PATH, else $SHIPYARD_DOCTOR_CONFIG, else
/etc/shipyard-doctor/config.toml (see README.md).
"""
# Commands that end within seconds and free little: they run without the cyclic
# garbage collector (what few cycles they leave die with the process).
SHORT_COMMANDS = ("check", "list", "completion")

UNDO_EPILOG = """\
examples:
  shipyard-doctor undo --list                the recorded fix runs, newest last
  shipyard-doctor undo                       undo the newest run not yet undone
  shipyard-doctor undo 20261201-101500-4242   undo that run
"""
LIST_EPILOG = """\
examples:
  shipyard-doctor list                       checks, categories and their fixes
  shipyard-doctor list --json                the same for scripts (schema in README.md)
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
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
        formatter_class=HelpFormatter,
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
        formatter_class=HelpFormatter,
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
        formatter_class=HelpFormatter,
    )
    fix.add_argument("fix_id", metavar="ID", help="the fix to run (see `list`)")
    fix.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document, also when there is nothing to fix",
    )
    add_fix_arguments(fix)

    undo = commands.add_parser(
        "undo",
        parents=[common],
        help="restore what a fix run changed",
        description="Restore the files a fix run changed (byte-identical) and reverse "
        "the steps that have an inverse; list what cannot be reversed.",
        epilog=UNDO_EPILOG,
        formatter_class=HelpFormatter,
    )
    undo.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="the run to undo (default: the newest not yet undone)",
    )
    undo.add_argument("--list", action="store_true", help="list the recorded runs")

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list every check and the fixes for it",
        description="List every installed check (built-in and plugins), its "
        "category and the fixes that repair it; plugins that failed to load too.",
        epilog=LIST_EPILOG,
        formatter_class=HelpFormatter,
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_completion_command(commands)

    # report: its flags live in doctor/report/ (add_parser); `run` below.
    from shipyard_doctor.report.flags import add_parser as add_report_parser

    add_report_parser(commands, [common])
    add_deploy_parsers(commands, common)  # deploy, status, undeploy (cli_deploy.py)
    return parser


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
    parser.add_argument(
        "--disable-stopped",
        action="store_true",
        help="ports, with --stop-conflicting: also `systemctl disable` a stopped "
        "service that is enabled, so it does not come back at boot",
    )


def to_options(
    args: argparse.Namespace, argv: Sequence[str], env: Environment
) -> CommandOptions:
    """The parsed command line as the typed options of its command."""
    from shipyard_doctor.options import (
        CheckOptions,
        CompletionOptions,
        FixCommandOptions,
        FixingOptions,
        ListOptions,
        ReportCommandOptions,
        UndoOptions,
    )

    if args.command == "completion":
        return CompletionOptions(args.shell)
    if args.command in ("deploy", "status", "undeploy"):
        return _deploy_options(args, env)
    if args.command == "report":
        from shipyard_doctor.report.flags import options_from_args

        return ReportCommandOptions(_config_options(args), options_from_args(args))
    config = _config_options(args)
    command = ("shipyard-doctor", *argv)
    if args.command == "list":
        return ListOptions(config, json=args.json)
    if args.command == "undo":
        return UndoOptions(config, run=args.run, list_runs=args.list, command=command)
    fixing = FixingOptions(
        yes=args.yes,
        dry_run=args.dry_run,
        stop_conflicting=args.stop_conflicting,
        disable_stopped=args.disable_stopped,
        command=command,
    )
    if args.command == "fix":
        return FixCommandOptions(config, args.fix_id, json=args.json, fixing=fixing)
    return CheckOptions(
        config,
        only=tuple(args.only),
        skip=tuple(args.skip),
        ignore=tuple(args.ignore),
        json=args.json,
        verbose=args.verbose,
        probe_dhcp=tuple(args.probe_dhcp),
        fix=args.fix,
        fixing=fixing,
    )


def _deploy_options(
    args: argparse.Namespace, env: Environment
) -> DeployCommandOptions | StatusCommandOptions | UndeployCommandOptions:
    from shipyard_doctor import cli_deploy
    from shipyard_doctor.options import (
        DeployCommandOptions,
        StatusCommandOptions,
        UndeployCommandOptions,
    )

    config = _config_options(args)
    if args.command == "deploy":
        return DeployCommandOptions(config, cli_deploy.deploy_options(args, env))
    if args.command == "status":
        return StatusCommandOptions(config, cli_deploy.status_options(args))
    return UndeployCommandOptions(config, cli_deploy.undeploy_options(args, env))


def _config_options(args: argparse.Namespace) -> ConfigOptions:
    from shipyard_doctor.options import ConfigOptions

    return ConfigOptions(
        path=args.config,
        docker_host=args.docker_host,
        stack=getattr(args, "stack", None),
        timeout=getattr(args, "timeout", None),
    )


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help
        from shipyard_doctor.errors import ExitCode

        return ExitCode.for_exception(exc)
    if args.command not in SHORT_COMMANDS:
        gc.enable()  # __main__ starts without the cyclic collector (see there)
    from shipyard_doctor.context import Environment
    from shipyard_doctor.errors import (
        DoctorError,
        ExitCode,
        Interrupted,
        sigterm_interrupts,
    )
    from shipyard_doctor.outcome import CommandOutcome, exit_code

    env = env or Environment()
    if args.command is None:
        parser.print_help(env.stdout)
        return exit_code(CommandOutcome(usage=True))
    debug = bool(getattr(args, "debug", False))
    try:
        with sigterm_interrupts():
            return exit_code(run(to_options(args, argv, env), env))
    except DoctorError as exc:
        print(f"shipyard-doctor: error: {exc}", file=env.stderr)
        return exit_code(exc)
    except BrokenPipeError as exc:
        return exit_code(exc)
    except (KeyboardInterrupt, Exception) as exc:
        if exit_code(exc) is ExitCode.INTERRUPTED:  # also when Python wrapped it
            hint = f"; {exc.hint}" if isinstance(exc, Interrupted) else ""
            print(f"shipyard-doctor: interrupted{hint}", file=env.stderr)
            return exit_code(exc)
        if debug:
            import traceback

            traceback.print_exc(file=env.stderr)
        print(
            f"shipyard-doctor: internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)",
            file=env.stderr,
        )
        return exit_code(exc)


def run(options: CommandOptions, env: Environment) -> CommandOutcome:
    """Run the command ``options`` are for."""
    from shipyard_doctor.options import (
        CompletionOptions,
        DeployCommandOptions,
        FixCommandOptions,
        ListOptions,
        ReportCommandOptions,
        StatusCommandOptions,
        UndeployCommandOptions,
        UndoOptions,
    )
    from shipyard_doctor.outcome import CommandOutcome

    command: Callable[[Any, Environment], CommandOutcome]
    if isinstance(options, CompletionOptions):
        from shipyard_doctor.completion import completion_script

        env.stdout.write(completion_script(build_parser(), options.shell))
        return CommandOutcome()
    if isinstance(options, DeployCommandOptions):
        from shipyard_doctor.commands.deploy import deploy_command as command
    elif isinstance(options, StatusCommandOptions):
        from shipyard_doctor.commands.deploy import status_command as command
    elif isinstance(options, UndeployCommandOptions):
        from shipyard_doctor.commands.deploy import undeploy_command as command
    elif isinstance(options, ReportCommandOptions):
        from shipyard_doctor.options import effective_config
        from shipyard_doctor.report.command import run_report

        config = effective_config(options.config, env.environ)
        return run_report(options.report, config, env)
    elif isinstance(options, ListOptions):
        from shipyard_doctor.commands.listing import list_command as command
    elif isinstance(options, UndoOptions):
        from shipyard_doctor.commands.undo import undo_command as command
    elif isinstance(options, FixCommandOptions):
        from shipyard_doctor.commands.fix import fix_command as command
    else:
        from shipyard_doctor.commands.check import check_command as command
    return command(options, env)


def _positive_float(text: str) -> float:
    from shipyard_doctor.validate import seconds, shown

    try:
        return seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, got {shown(text)}") from None
