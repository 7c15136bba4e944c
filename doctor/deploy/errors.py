"""Deploy errors meant for the user (one line each, see errors.DoctorError)."""

from __future__ import annotations

from shipyard_doctor.errors import DoctorError, ExitCode


class DeployError(DoctorError):
    """The deploy cannot start or go on: Docker unreachable, bad secrets file, ..."""

    exit_code = ExitCode.PROBLEMS
