"""`shipyard-doctor report`'s flags and the options they become: the CLI's edge,
kept apart from the run (:mod:`.command`) so that building the parser for any
command does not import the report's machinery."""

from __future__ import annotations

import argparse

from shipyard_doctor.errors import UsageError
from shipyard_doctor.helpformat import HelpFormatter
from shipyard_doctor.report.formats import Format

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from shipyard_doctor.report.options import ReportOptions

EPILOG = """\
examples:
  shipyard-doctor report                   Markdown: ./shipyard-doctor-report-TIME.md
  shipyard-doctor report -o - | less       Markdown on stdout (paste into an issue)
  shipyard-doctor report --format tar      a .tar.gz: report.md, report.json, the raw
                                           files and a manifest with their sha256
  shipyard-doctor report --format json -o r.json --pseudonymize
  shipyard-doctor check --json > results.json
  shipyard-doctor report --from results.json   reuse those results

Secrets (passwords, tokens, keys, registry auths) are redacted by default, and a part
that cannot be redacted is left out. Files are written mode 0600; nothing is uploaded.
exit codes: 0 report written, 2 usage or configuration error (a bad --from file,
--no-redact without a terminal or --yes, an output path that cannot be written),
3 --no-redact not confirmed (nothing written), 70 internal error (a secret survived
redaction: nothing written), 130 interrupted.
"""


def add_parser(
    commands: Any, parents: Sequence[argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    """Declare `report` on the CLI's subparsers."""
    report = commands.add_parser(
        "report",
        parents=list(parents),
        help="write a support report (redacted) for a ticket or GitHub issue",
        description="Run every check (or reuse a saved `check --json`), collect what "
        "a maintainer needs to help (Docker, dockerd's configuration and log, the "
        "stack's containers, network, mounts, DHCP, nat rules), redact it and write "
        "it as Markdown, JSON or a tarball.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    report.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="where to write it ('-' = stdout; default: a timestamped file here)",
    )
    report.add_argument(
        "--format",
        choices=[f.value for f in Format],
        default=Format.MARKDOWN.value,
        help="md (default), json, or tar (.tar.gz with both and the raw files)",
    )
    report.add_argument(
        "--no-redact",
        action="store_true",
        help="do not redact secrets (asks first; marks the report UNREDACTED)",
    )
    report.add_argument(
        "--yes",
        action="store_true",
        help="with --no-redact: do not ask (needed without a terminal)",
    )
    report.add_argument(
        "--pseudonymize",
        action="store_true",
        help="replace hostnames, IP/MAC addresses and user names by stand-ins "
        "(the mapping is written next to the report, never into it)",
    )
    report.add_argument(
        "--log-lines",
        metavar="N",
        type=_lines,
        help="last lines of each container's and dockerd's log (default: "
        "[report] log_lines, 50; 0 = none)",
    )
    report.add_argument(
        "--from",
        dest="from_results",
        metavar="RESULTS.json",
        help="reuse a saved `check --json` instead of running the checks",
    )
    report.add_argument(
        "--timeout",
        dest="collector_timeout",
        metavar="SECONDS",
        type=float,
        help="per-collector timeout (default: [report] timeout, 5)",
    )
    parser: argparse.ArgumentParser = report
    return parser


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of lines: {text!r}") from None
    if not 0 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"must be from 0 to 10000: {text!r}")
    return value


def options_from_args(args: argparse.Namespace) -> ReportOptions:
    from shipyard_doctor.report.options import ReportOptions

    if args.collector_timeout is not None and args.collector_timeout <= 0:
        raise UsageError(
            f"--timeout must be more than 0, got {args.collector_timeout:g}"
        )
    return ReportOptions(
        output=args.output,
        format=Format(args.format),
        redact=not args.no_redact,
        pseudonymize=args.pseudonymize,
        log_lines=args.log_lines,
        from_results=args.from_results,
        timeout=args.collector_timeout,
        yes_unredacted=args.yes,
    )
