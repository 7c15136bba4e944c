"""The deploy commands at the edge: `deploy`, `status`, `undeploy`.

Flags become frozen option dataclasses here (:func:`deploy_options`, ...); below this
module nothing sees argparse. This module owns the conversation (confirmation) and
the exit codes; doctor/deploy/ decides, render/deploy.py shows.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shipyard_doctor.context import Environment
from shipyard_doctor.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
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

exit codes: 0 deployed (or nothing to do), 1 preflight blockers or the deploy failed
(everything it created removed), 2 usage or configuration error, 3 planned but not
applied (no terminal to ask and no --yes), 70 internal error, 130 interrupted
(rolled back).
"""


def add_deploy_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `deploy`, `status` and `undeploy` to the CLI's subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
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
        help="the UI's admin password (v1; kept for re-runs, never shown)",
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


def deploy_options(
    args: argparse.Namespace, env: Environment, stack: str
) -> DeployOptions:
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
        stack=stack,
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


def status_options(args: argparse.Namespace, stack: str) -> StatusOptions:
    from shipyard_doctor.deploy.options import StatusOptions

    return StatusOptions(stack=stack, json=args.json)


def undeploy_options(
    args: argparse.Namespace, env: Environment, stack: str
) -> UndeployOptions:
    from shipyard_doctor.deploy.options import UndeployOptions

    return UndeployOptions(
        stack=stack, volumes=args.volumes, yes=args.yes, can_ask=bool(env.stdin_isatty)
    )


def _config(args: argparse.Namespace, env: Environment) -> Config:
    from shipyard_doctor.config import load_config
    from shipyard_doctor.host.dockerapi import parse_endpoint
    from shipyard_doctor.stacks import load_stack

    config = load_config(args.config, env.environ)
    if args.docker_host:
        parse_endpoint(args.docker_host)
        docker = replace(
            config.docker, host=args.docker_host, host_origin="--docker-host"
        )
        config = replace(config, docker=docker)
    parse_endpoint(config.docker.host)
    if args.stack and args.stack != config.stack.name:
        load_stack(args.stack)
        # [stack.ports] and [stack.images] name the file's stack's services.
        stack = replace(config.stack, name=args.stack, ports={}, images={})
        config = replace(config, stack=stack)
    return config


def run_deploy_command(args: argparse.Namespace, env: Environment) -> int:
    """Entry from cli.main for `deploy`, `status` and `undeploy`."""
    config = _config(args, env)
    if args.command == "deploy":
        return deploy(deploy_options(args, env, config.stack.name), config, env)
    if args.command == "status":
        return status(status_options(args, config.stack.name), config, env)
    return undeploy(undeploy_options(args, env, config.stack.name), config, env)


# --- the commands -----------------------------------------------------------------


def _ask(env: Environment, question: str) -> bool:
    env.stdout.write(f"{question} [y/N] ")
    env.stdout.flush()
    return env.stdin.readline().strip().lower() in ("y", "yes")


def deploy(options: DeployOptions, config: Config, env: Environment) -> int:
    from shipyard_doctor.deploy.apply import apply_plan
    from shipyard_doctor.deploy.daemon import Daemon
    from shipyard_doctor.deploy.plan import Action, make_plan
    from shipyard_doctor.deploy.preflight import run_preflight
    from shipyard_doctor.deploy.secrets import load_secrets
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.render import deploy as view
    from shipyard_doctor.stacks import load_stack

    stack = load_stack(options.stack)
    if options.admin_password and not stack.login.password_env:
        raise UsageError(
            f"Shipyard {stack.name} cannot be given an admin password at deploy: "
            "change it in the UI after the first login"
        )
    out = env.stdout
    host = Host(config, env.environ)
    if not host.docker().ok:  # show why, with the fix ids, before anything else
        pre = run_preflight(host, stack, frozenset(), (), options.force)
        view.render_preflight(pre, out)
        return ExitCode.PROBLEMS
    daemon = Daemon(host)
    try:
        found = load_secrets(
            config.stack.state_dir,
            stack.name,
            stack.login.default_password,
            options.admin_password,
        )
        plan = make_plan(stack, config, options, daemon, found)
        if plan.action in (Action.NOTHING, Action.LEGACY):
            view.render_plan(plan, out)
            ids = ", ".join(f"{c.name} {c.id[:12]}" for c in plan.keep)
            view.render_message(
                f"already deployed, nothing to do ({ids})"
                if plan.action is Action.NOTHING
                else "already deployed (by another tool, no labels), nothing to do; "
                "`shipyard-doctor undeploy` then `deploy` to replace it",
                out,
            )
            return ExitCode.OK
        pre = run_preflight(
            host, stack, frozenset(plan.services), plan.pulls, options.force
        )
        view.render_preflight(pre, out)
        if pre.blocked:
            return ExitCode.PROBLEMS
        view.render_plan(plan, out)
        if options.dry_run:
            return ExitCode.OK
        if not options.yes:
            if not options.can_ask:
                view.render_message(
                    "nothing done: no terminal to confirm on; run again with --yes",
                    out,
                )
                return ExitCode.NOT_APPLIED
            if not _ask(env, f"{plan.action.value} Shipyard {stack.name}?"):
                view.render_message("nothing done", out)
                return ExitCode.NOT_APPLIED
        reporter = view.RichReporter(out) if options.rich else view.TextReporter(out)
        outcome = apply_plan(plan, daemon, reporter)
        view.render_outcome(plan, outcome, out)
        if outcome.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if outcome.ok else ExitCode.PROBLEMS
    finally:
        daemon.close()


def status(options: StatusOptions, config: Config, env: Environment) -> int:
    from shipyard_doctor.deploy.daemon import Daemon
    from shipyard_doctor.deploy.status import stack_status
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.render import deploy as view
    from shipyard_doctor.stacks import load_stack

    daemon = Daemon(Host(config, env.environ))
    try:
        found = stack_status(daemon, load_stack(options.stack))
    finally:
        daemon.close()
    view.render_status(found, env.stdout, options.json)
    return ExitCode.OK if found.state == "deployed" else ExitCode.PROBLEMS


def undeploy(options: UndeployOptions, config: Config, env: Environment) -> int:
    from shipyard_doctor.deploy.daemon import Daemon
    from shipyard_doctor.deploy.status import apply_undeploy, plan_undeploy
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.render import deploy as view
    from shipyard_doctor.stacks import load_stack

    daemon = Daemon(Host(config, env.environ))
    try:
        plan = plan_undeploy(daemon, load_stack(options.stack), options.volumes)
        view.render_undeploy_plan(plan, env.stdout)
        if plan.empty:
            return ExitCode.OK
        if not options.yes:
            if not options.can_ask:
                view.render_message(
                    "nothing done: no terminal to confirm on; run again with --yes",
                    env.stdout,
                )
                return ExitCode.NOT_APPLIED
            if not _ask(env, "remove them?"):
                view.render_message("nothing done", env.stdout)
                return ExitCode.NOT_APPLIED
        view.render_removed(apply_undeploy(daemon, plan), env.stdout)
        return ExitCode.OK
    finally:
        daemon.close()
