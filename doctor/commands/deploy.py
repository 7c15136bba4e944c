"""`deploy`, `status`, `undeploy`: typed options in, a CommandOutcome out.

The conversation (confirmation) is here; doctor/deploy/ decides, render/deploy.py
shows, and outcome.exit_code turns the outcome into the documented exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.context import Environment
from shipyard_doctor.errors import UsageError
from shipyard_doctor.options import effective_config
from shipyard_doctor.outcome import CommandOutcome
from shipyard_doctor.records import replace

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
    from shipyard_doctor.deploy.options import (
        DeployOptions,
        StatusOptions,
        UndeployOptions,
    )
    from shipyard_doctor.options import (
        DeployCommandOptions,
        StatusCommandOptions,
        UndeployCommandOptions,
    )


def deploy_command(options: DeployCommandOptions, env: Environment) -> CommandOutcome:
    config = effective_config(options.config, env.environ)
    found = replace(options.deploy, stack=config.stack.name)
    return deploy(found, config, env)


def status_command(options: StatusCommandOptions, env: Environment) -> CommandOutcome:
    config = effective_config(options.config, env.environ)
    return status(replace(options.status, stack=config.stack.name), config, env)


def undeploy_command(
    options: UndeployCommandOptions, env: Environment
) -> CommandOutcome:
    config = effective_config(options.config, env.environ)
    return undeploy(replace(options.undeploy, stack=config.stack.name), config, env)


def _ask(env: Environment, question: str) -> bool:
    env.stdout.write(f"{question} [y/N] ")
    env.stdout.flush()
    return env.stdin.readline().strip().lower() in ("y", "yes")


def deploy(options: DeployOptions, config: Config, env: Environment) -> CommandOutcome:
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
        with host:
            pre = run_preflight(host, stack, frozenset(), (), force=False)
        view.render_preflight(pre, out, forceable=False)
        return CommandOutcome(failed=True)
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
            return CommandOutcome()
        pre = run_preflight(
            host, stack, frozenset(plan.services), plan.pulls, options.force
        )
        view.render_preflight(pre, out)
        if pre.blocked:
            return CommandOutcome(failed=True)
        view.render_plan(plan, out)
        if options.dry_run:
            return CommandOutcome()
        if not options.yes:
            if not options.can_ask:
                view.render_message(
                    "nothing done: no terminal to confirm on; run again with --yes",
                    out,
                )
                return CommandOutcome(declined=True)
            if not _ask(env, f"{plan.action.value} Shipyard {stack.name}?"):
                view.render_message("nothing done", out)
                return CommandOutcome(declined=True)
        reporter = view.RichReporter(out) if options.rich else view.TextReporter(out)
        outcome = apply_plan(plan, daemon, reporter)
        view.render_outcome(plan, outcome, out)
        if outcome.interrupted:
            return CommandOutcome(interrupted=True)
        return CommandOutcome(failed=not outcome.ok)
    finally:
        daemon.close()


def status(options: StatusOptions, config: Config, env: Environment) -> CommandOutcome:
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
    return CommandOutcome(failed=found.state != "deployed")


def undeploy(
    options: UndeployOptions, config: Config, env: Environment
) -> CommandOutcome:
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
            return CommandOutcome()
        if not options.yes:
            if not options.can_ask:
                view.render_message(
                    "nothing done: no terminal to confirm on; run again with --yes",
                    env.stdout,
                )
                return CommandOutcome(declined=True)
            if not _ask(env, "remove them?"):
                view.render_message("nothing done", env.stdout)
                return CommandOutcome(declined=True)
        view.render_removed(apply_undeploy(daemon, plan), env.stdout)
        return CommandOutcome()
    finally:
        daemon.close()
