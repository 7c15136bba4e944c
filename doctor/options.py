"""The command line as typed, immutable options: built once by doctor/cli.py from
argparse's namespace, then the only thing the commands below it see.

``ConfigOptions`` are the overrides every command shares (--config, --docker-host,
and for ``check`` --stack and --timeout); :func:`effective_config` applies them to
the configuration file. Each command has its own options class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shipyard_doctor.records import record, replace

if TYPE_CHECKING:  # each command's own options load with that command only
    from shipyard_doctor.config import Config
    from shipyard_doctor.deploy.options import (
        DeployOptions,
        StatusOptions,
        UndeployOptions,
    )
    from shipyard_doctor.report.options import ReportOptions


@record
class ConfigOptions:
    """Where the configuration comes from, and the flags that override it."""

    path: str | None = None  # --config
    docker_host: str | None = None  # --docker-host
    stack: str | None = None  # check --stack
    timeout: float | None = None  # check --timeout (per check, seconds)


@record
class FixingOptions:
    """How fixes may be applied: the flags shared by ``check --fix`` and ``fix``."""

    yes: bool = False  # --yes: apply without asking
    dry_run: bool = False  # --dry-run: plans only
    stop_conflicting: bool = False  # ports: may stop foreign port holders
    disable_stopped: bool = False  # ports: also `systemctl disable` what it stopped
    command: tuple[str, ...] = ("shipyard-doctor",)  # recorded in the journal


@record
class CheckOptions:
    """``check``'s options: which checks run, how results are shown, whether to fix."""

    config: ConfigOptions
    only: tuple[str, ...] = ()  # as given: comma-separated ids, repeatable
    skip: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    json: bool = False
    verbose: bool = False
    probe_dhcp: tuple[str, ...] = ()  # interfaces to send a DHCPDISCOVER on
    fix: bool = False  # --fix (--yes and --dry-run imply it)
    fixing: FixingOptions = FixingOptions()

    @property
    def offers_fixes(self) -> bool:
        return self.fix or self.fixing.yes or self.fixing.dry_run


@record
class FixCommandOptions:
    """``fix ID``'s options: the fix to apply, and how."""

    config: ConfigOptions
    fix_id: str
    json: bool = False
    fixing: FixingOptions = FixingOptions()


@record
class UndoOptions:
    """``undo``'s options: the fix run to undo, or ``--list`` of the recorded runs."""

    config: ConfigOptions
    run: str | None = None  # None: the newest run not yet undone
    list_runs: bool = False  # --list
    command: tuple[str, ...] = ("shipyard-doctor", "undo")  # shown in the lock


@record
class ListOptions:
    """``list``'s options: the installed checks and fixes as a table or as JSON."""

    config: ConfigOptions
    json: bool = False


@record
class CompletionOptions:
    """``completion``'s options: the shell to print a completion script for."""

    shell: str  # bash, zsh or fish


@record
class DeployCommandOptions:
    """``deploy``'s options: configuration overrides and the deploy's own flags."""

    config: ConfigOptions
    deploy: DeployOptions  # doctor/deploy/options.py; its stack comes from config


@record
class StatusCommandOptions:
    """``status``'s options: configuration overrides and the stack to inspect."""

    config: ConfigOptions
    status: StatusOptions


@record
class UndeployCommandOptions:
    """``undeploy``'s options: configuration overrides and what to remove."""

    config: ConfigOptions
    undeploy: UndeployOptions


@record
class ReportCommandOptions:
    """``report``'s options: configuration overrides and the report's own flags."""

    config: ConfigOptions
    report: ReportOptions  # doctor/report/options.py


CommandOptions = (
    CheckOptions
    | FixCommandOptions
    | UndoOptions
    | ListOptions
    | CompletionOptions
    | ReportCommandOptions
    | DeployCommandOptions
    | StatusCommandOptions
    | UndeployCommandOptions
)


def effective_config(options: ConfigOptions, environ: Mapping[str, str]) -> Config:
    """The configuration file, with the command line's overrides applied; a bad
    endpoint or stack name is a usage error now, before anything runs."""
    from shipyard_doctor.config import load_config
    from shipyard_doctor.errors import UsageError
    from shipyard_doctor.host.dockerapi import parse_endpoint
    from shipyard_doctor.stacks import load_stack
    from shipyard_doctor.validate import docker_url, shown

    config = load_config(options.path, environ)
    if options.docker_host is not None:
        try:
            docker_url(options.docker_host)  # a bad URL is a usage error, now
        except ValueError as exc:
            shown_url = shown(options.docker_host)
            raise UsageError(f"--docker-host {shown_url} {exc}") from None
        docker = replace(
            config.docker, host=options.docker_host, host_origin="--docker-host"
        )
        config = replace(config, docker=docker)
    try:
        docker_url(config.docker.host)  # $DOCKER_HOST is checked here
    except ValueError as exc:
        origin = config.docker.host_origin
        raise UsageError(f"{origin} {shown(config.docker.host)} {exc}") from None
    parse_endpoint(config.docker.host)
    if options.stack is not None and options.stack != config.stack.name:
        load_stack(options.stack)  # "" or an unknown name: a usage error
        # [stack.ports] and [stack.images] name the file's stack's services: not
        # this other stack's.
        stack = replace(config.stack, name=options.stack, ports={}, images={})
        config = replace(config, stack=stack)
    if options.timeout:
        config = replace(config, checks=replace(config.checks, timeout=options.timeout))
    return config
