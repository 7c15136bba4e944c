"""What the user asked `report` for, as one frozen record made at the CLI's edge.

Nothing in doctor/report/ sees argparse: the CLI turns its flags into
:class:`ReportOptions` (see :func:`shipyard_doctor.report.flags.options_from_args`).
"""

from __future__ import annotations

from shipyard_doctor.records import record
from shipyard_doctor.report.formats import Format

__all__ = ["Format", "ReportOptions"]


@record
class ReportOptions:
    """``report``'s flags: output and format, what to hide, and what to collect."""

    output: str | None = None  # None: a timestamped file in the current directory
    format: Format = Format.MARKDOWN
    redact: bool = True
    pseudonymize: bool = False
    log_lines: int | None = None  # None: [report] log_lines
    from_results: str | None = None  # a saved `check --json` instead of running
    timeout: float | None = None  # per collector; None: [report] timeout
    yes_unredacted: bool = False  # --no-redact confirmed without a terminal

    @property
    def to_stdout(self) -> bool:
        return self.output == "-"
