"""The deploy commands' flags, part of the CLI's edge: `deploy`, `status`,
`undeploy` are declared here and their flags become frozen option dataclasses
(:func:`deploy_options`, ...); doctor/commands/deploy.py runs them and nothing below
this module sees argparse.
"""

from __future__ import annotations

import argparse

from shipyard_doctor.errors import UsageError
from shipyard_doctor.helpformat import HelpFormatter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from typing import Any

    from shipyard_doctor.context import Environment
    from shipyard_doctor.deploy.options import (
        DeployOptions,
        StatusOptions,
        UndeployOptions,
    )

DEPLOY_EPILOG = """\
examples:
  shipyard-doctor deploy                       plan, check, ask, deploy Shipyard v1
  shipyard-doctor deploy --dry-run             show the preflight and the plan only
  shipyard-doctor deploy --stack v3 --yes      deploy the last Shipyard without asking
  shipyard-doctor deploy --image-map shipyard/redis=mirror.local/shipyard/redis:2014
  shipyard-doctor deploy --with-agent --admin-password "$PASS"
  shipyard-doctor status --json
  shipyard-doctor undeploy --yes               remove the stack, keep its volumes
  shipyard-doctor undeploy --yes && shipyard-doctor deploy --admin-password "$NEW"
                                               change v1's admin password

exit codes: 0 deployed (or nothing to do), 1 preflight blockers or the deploy failed
(everything it created removed), 2 usage or configuration error, 3 planned but not
applied (no terminal to ask and no --yes), 70 internal error, 130 interrupted
(rolled back).
"""


def add_deploy_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `deploy`, `status` and `undeploy` to the CLI's subcommands."""
    fmt = HelpFormatter
    deploy = commands.add_parser(
        "deploy",
        parents=[common],
        help="deploy the Shipyard stack (checked first, rolled back on failure)",
        description="Check the host, show the plan, then create the stack's "
        "containers in dependency order, waiting until each answers. Any failure "
        "or Ctrl-C removes exactly what this run created.",
        epilog=DEPLOY_EPILOG,
        formatter_class=fmt,
    )
    _stack_flag(deploy)
    deploy.add_argument("--dry-run", action="store_true", help="show the plan only")
    deploy.add_argument("-y", "--yes", action="store_true", help="do not ask")
    deploy.add_argument(
        "--image-map",
        metavar="FROM=TO",
        action="append",
        default=[],
        help="run image TO where the stack names FROM (repeatable; adds to "
        "[stack.images])",
    )
    deploy.add_argument(
        "--pull", action="store_true", help="pull every image, even those present"
    )
    deploy.add_argument(
        "--admin-password",
        metavar="PASSWORD",
        help="the UI's admin password (v1; set when the UI's container is created, "
        "a running one keeps its own; kept for re-runs, never shown)",
    )
    deploy.add_argument(
        "--with-agent",
        action="store_true",
        help="also run the agent as a container (no host libraries needed)",
    )
    deploy.add_argument(
        "--force",
        action="store_true",
        help="deploy even when preflight checks fail (says what it overrode)",
    )
    status = commands.add_parser(
        "status",
        parents=[common],
        help="show how the Shipyard stack stands",
        epilog=DEPLOY_EPILOG,
        formatter_class=fmt,
    )
    _stack_flag(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    undeploy = commands.add_parser(
        "undeploy",
        parents=[common],
        help="remove the Shipyard stack's containers and network",
        epilog=DEPLOY_EPILOG,
        formatter_class=fmt,
    )
    _stack_flag(undeploy)
    undeploy.add_argument(
        "--volumes", action="store_true", help="also remove its volumes (the data)"
    )
    undeploy.add_argument("-y", "--yes", action="store_true", help="do not ask")


def _stack_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", metavar="NAME", help="v1, v2 or v3 (overrides [stack] name)"
    )


# --- flags -> options -------------------------------------------------------------


def deploy_options(args: argparse.Namespace, env: Environment) -> DeployOptions:
    from shipyard_doctor.config import IMAGE_REF
    from shipyard_doctor.deploy.options import DeployOptions

    pairs = []
    for item in args.image_map:
        source, sep, target = item.partition("=")
        if not sep or not IMAGE_REF.match(source) or not IMAGE_REF.match(target):
            raise UsageError(
                f"--image-map {item!r}: give FROM=TO with two image references, e.g. "
                "shipyard/redis=127.0.0.1:5000/shipyard/redis:latest"
            )
        pairs.append((source, target))
    if args.admin_password is not None and len(args.admin_password) < 4:
        raise UsageError("--admin-password: use at least 4 characters")
    return DeployOptions(
        stack=args.stack or "",
        dry_run=args.dry_run,
        yes=args.yes,
        image_map=tuple(pairs),
        pull=args.pull,
        admin_password=args.admin_password,
        with_agent=args.with_agent,
        force=args.force,
        can_ask=bool(env.stdin_isatty),
        rich=env.rich_output,
    )


def status_options(args: argparse.Namespace) -> StatusOptions:
    from shipyard_doctor.deploy.options import StatusOptions

    return StatusOptions(stack=args.stack or "", json=args.json)


def undeploy_options(args: argparse.Namespace, env: Environment) -> UndeployOptions:
    from shipyard_doctor.deploy.options import UndeployOptions

    return UndeployOptions(
        stack=args.stack or "",
        volumes=args.volumes,
        yes=args.yes,
        can_ask=bool(env.stdin_isatty),
    )
