"""`shipyard-doctor report`: the run (its flags are in :mod:`.flags`).

The CLI declares the command with :func:`.flags.add_parser`, turns its flags into a
frozen :class:`ReportOptions` with :func:`.flags.options_from_args`, and calls
:func:`run_report` with those options; nothing here sees argparse.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from shipyard_doctor import __version__
from shipyard_doctor.errors import DoctorError, ExitCode, UsageError
from shipyard_doctor.outcome import CommandOutcome
from shipyard_doctor.records import record
from shipyard_doctor.report.options import Format, ReportOptions

if TYPE_CHECKING:
    from shipyard_doctor.config import Config
    from shipyard_doctor.context import Environment
    from shipyard_doctor.host.gateway import Host

LOG_BYTES = 32 * 1024  # per container log and dockerd's log, after the line cap


class RedactionFailed(DoctorError):
    exit_code = ExitCode.INTERNAL


# --- the run ---------------------------------------------------------------------


@record
class Outcome:
    """What was written where, for the one function that tells the user."""

    path: str | None  # None: stdout
    format: Format
    size: int
    redaction: str
    mapping: str | None
    sections: Sequence[tuple[str, str]]  # (title, status) of sections not ok


def run_report(
    options: ReportOptions, config: Config, env: Environment
) -> CommandOutcome:
    if options.to_stdout and options.format is Format.TARBALL:
        raise UsageError("a tarball cannot go to stdout: give -o FILE.tar.gz")
    if not options.redact and not _confirmed(options, env):
        render_not_confirmed(env.stderr)
        return CommandOutcome(declined=True)
    saved = load_results(options.from_results) if options.from_results else None
    outcome = make_report(options, config, env, saved)
    render_outcome(outcome, env.stderr if options.to_stdout else env.stdout)
    return CommandOutcome()


def _confirmed(options: ReportOptions, env: Environment) -> bool:
    if options.yes_unredacted:
        return True
    if not env.stdin_isatty:
        raise UsageError(
            "--no-redact writes passwords and keys as they are: confirm on a "
            "terminal, or add --yes"
        )
    env.stderr.write(
        "The report will contain passwords, tokens and keys as they are. "
        "Write it unredacted? [y/N] "
    )
    env.stderr.flush()
    answer = env.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def load_results(path: str) -> list[dict[str, Any]]:
    """The checks of a saved `check --json`, validated; a bad file is a UsageError."""
    from shipyard_doctor.model import SCHEMA_VERSION, Status

    hint = "save one with `shipyard-doctor check --json > FILE`"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"--from {path}: cannot read it: {why}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--from {path}: not JSON ({exc}); {hint}") from None
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != SCHEMA_VERSION
        or not isinstance(doc.get("checks"), list)
    ):
        raise UsageError(
            f"--from {path}: not the output of `check --json` (schema "
            f"{SCHEMA_VERSION} with a list of checks); {hint}"
        )
    statuses = {s.value for s in Status}
    for i, check in enumerate(doc["checks"]):
        if (
            not isinstance(check, dict)
            or not isinstance(check.get("id"), str)
            or check.get("status") not in statuses
            or not isinstance(check.get("summary"), str)
        ):
            raise UsageError(
                f"--from {path}: checks[{i}] needs an id, a status "
                f"({', '.join(sorted(statuses))}) and a summary; {hint}"
            )
    return list(doc["checks"])


def make_report(
    options: ReportOptions,
    config: Config,
    env: Environment,
    saved: list[dict[str, Any]] | None,
) -> Outcome:
    from shipyard_doctor.host.gateway import Host

    started = time.monotonic()
    now = datetime.now(UTC)
    with Host(config, env.environ) as host:
        return _make_report(options, config, env, saved, host, started, now)


def _make_report(
    options: ReportOptions,
    config: Config,
    env: Environment,
    saved: list[dict[str, Any]] | None,
    host: Host,
    started: float,
    now: datetime,
) -> Outcome:
    from shipyard_doctor.report import bundle, document
    from shipyard_doctor.report.collect import CollectContext, run_collectors
    from shipyard_doctor.report.collectors import COLLECTORS
    from shipyard_doctor.report.markdown import render_markdown

    context = CollectContext(
        log_lines=config.report.log_lines
        if options.log_lines is None
        else options.log_lines,
        log_bytes=LOG_BYTES,
        stack_containers=_stack_containers(),
    )
    checks: list[dict[str, Any]] = list(saved or [])

    def run_checks() -> None:
        if saved is None:
            checks.extend(r.to_dict() for r in _run_checks(host, config))

    timeout = options.timeout or config.report.timeout
    sections = run_collectors(COLLECTORS, host, context, timeout, run_checks)
    created = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    meta = {
        "version": __version__,
        "created": created,
        "checks_from": options.from_results or "",
        "collector_timeout": timeout,
        "log_lines": context.log_lines,
        "duration_ms": round((time.monotonic() - started) * 1000),
    }
    privacy = document.Privacy(
        redact=options.redact,
        pseudonymize=options.pseudonymize,
        vocabulary=_vocabulary(),
        hostnames=_hostnames(host, sections),
        users=_users(env),
    )
    doc, redactor, pseudonymizer = document.build(
        meta, host.summary(), checks, sections, privacy
    )
    markdown = render_markdown(doc)
    as_json = json.dumps(doc.to_dict(), indent=2, default=str) + "\n"
    outputs = {"report.md": markdown, "report.json": as_json, **doc.files}
    if redactor is not None:
        for name, text in outputs.items():
            try:
                redactor.check(text, name, patterns=False)
            except Exception as exc:
                raise RedactionFailed(
                    f"report not written: {exc}; this is a bug, please report it "
                    "(without the report)"
                ) from None
    stamp_path = options.output if options.output not in (None, "-") else None
    path = stamp_path or bundle.default_path(options.format, now)
    if options.format is Format.TARBALL:
        top = Path(path).name.removesuffix(".tar.gz").removesuffix(".tgz")
        data = bundle.tarball(outputs, created, top or "report")
    else:
        data = (markdown if options.format is Format.MARKDOWN else as_json).encode()
    mapping_path = None
    if pseudonymizer is not None:
        mapping_path = (
            f"{stamp_path}.pseudonyms.json"
            if stamp_path
            else bundle.default_path(options.format, now) + ".pseudonyms.json"
        )
    try:
        if pseudonymizer is not None and mapping_path is not None:
            _write(
                mapping_path,
                json.dumps(pseudonymizer.mapping(), indent=2).encode() + b"\n",
            )
        if options.to_stdout:
            env.stdout.write(data.decode())
            env.stdout.flush()
        else:
            _write(path, data)
    except BaseException:  # Ctrl-C or a write error: no mapping without its report
        if mapping_path is not None:
            Path(mapping_path).unlink(missing_ok=True)
        raise
    return Outcome(
        None if options.to_stdout else path,
        options.format,
        len(data),
        str(doc.meta["redaction"]["summary"]),
        mapping_path,
        [
            (s.title, f"{s.status.value}: {s.summary}")
            for s in doc.sections
            if s.status.value not in ("ok",)
        ],
    )


def _write(path: str, data: bytes) -> None:
    from shipyard_doctor.report.bundle import write_private

    try:
        write_private(path, data)
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {(exc.strerror or str(exc)).lower()}; "
            "choose another place with -o PATH (or -o - for stdout)"
        ) from None


def render_outcome(outcome: Outcome, out: TextIO) -> None:
    where = outcome.path or "stdout"
    print(
        f"report written to {where} ({outcome.format.value}, {outcome.size:,} bytes); "
        f"{outcome.redaction}",
        file=out,
    )
    for title, status in outcome.sections:
        print(f"  {title}: {status}", file=out)
    if outcome.mapping:
        print(
            f"pseudonym mapping (keep it private; it is not in the report): "
            f"{outcome.mapping}",
            file=out,
        )
    print("nothing was uploaded; review the report before you share it", file=out)


def render_not_confirmed(out: TextIO) -> None:
    print("shipyard-doctor: nothing written (--no-redact was not confirmed)", file=out)


def _run_checks(host: Host, config: Config) -> list[Any]:
    from shipyard_doctor.registry import discover
    from shipyard_doctor.runner import Selection, order_checks, run_checks

    registry = discover()
    known = registry.known_check_ids
    skipped = {i: "skipped by [checks] skip" for i in config.checks.skip if i in known}
    selection = Selection(
        ids=order_checks(registry, known),
        skipped=skipped,
        ignored=frozenset(i for i in config.checks.ignore if i in known),
    )
    return run_checks(registry, selection, host, config.checks.timeout)


def _stack_containers() -> dict[str, str]:
    from shipyard_doctor.stacks import available_stacks, load_stack

    return {
        service.container: name
        for name in available_stacks()
        for service in load_stack(name).services
    }


def _vocabulary() -> tuple[str, ...]:
    from shipyard_doctor.stacks import available_stacks, load_stack

    words = {"shipyard", "docker", "dockerd", "redis", "postgres", "admin", "root"}
    for name in available_stacks():
        stack = load_stack(name)
        words.add(stack.name)
        for service in stack.services:
            words.update({service.name, service.container})
            words.update(service.image.replace(":", "/").split("/"))
    return tuple(sorted(words))


def _hostnames(host: Host, sections: Sequence[Any]) -> tuple[str, ...]:
    names = {str(host.summary().get("hostname", "")), os.uname().nodename}
    for section in sections:
        if section.id == "docker":
            names.add(str(section.data.get("info", {}).get("Name", "")))
    names |= {n.split(".")[0] for n in names}
    return tuple(sorted(n for n in names if n))


def _users(env: Environment) -> tuple[str, ...]:
    """People's accounts (uid 1000 and up, not nobody); system accounts say what
    runs, not who, and stay."""
    users = {entry.pw_name for entry in pwd.getpwall() if 1000 <= entry.pw_uid < 65534}
    if env.environ.get("SUDO_USER") and env.environ["SUDO_USER"] != "root":
        users.add(env.environ["SUDO_USER"])
    return tuple(sorted(users))
