"""The stack's passwords: generated once, kept in a 0600 file, never shown.

The database password must survive a re-run and an undeploy/deploy that keeps the
database volume (postgres only reads it when the volume is first initialised), so it
is generated once and stored in ``[stack] state_dir``/<stack>.secrets.json.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from shipyard_doctor.deploy.errors import DeployError
from shipyard_doctor.records import field, record


@record
class StackSecrets:
    """A stack's database and admin passwords, and the 0600 file that keeps them."""

    db_password: str = field(repr=False)
    admin_password: str = field(repr=False)
    admin_is_default: bool  # the stack's 2014 default: deploy warns
    path: Path
    new: bool  # not yet written to path

    def values(self) -> tuple[str, ...]:
        """The values to hide in anything shown (the public default is no secret)."""
        admin = "" if self.admin_is_default else self.admin_password
        return tuple(v for v in (self.db_password, admin) if v)


def load_secrets(
    state_dir: str, stack: str, default_admin: str, given_admin: str | None
) -> StackSecrets:
    path = Path(state_dir) / f"{stack}.secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DeployError(
                f"cannot read the stack's secrets in {path} ({type(exc).__name__}): "
                "fix its permissions or content"
            ) from None
    db = stored.get("db_password") or secrets.token_urlsafe(24)
    admin = given_admin or stored.get("admin_password") or default_admin
    new = db != stored.get("db_password") or admin != stored.get(
        "admin_password", default_admin
    )
    return StackSecrets(db, admin, admin == default_admin, path, new)


def save_secrets(found: StackSecrets) -> None:
    """Write the file mode 0600 (created so, never world-readable for a moment)."""
    if not found.new:
        return
    try:
        found.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = found.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(
                    {
                        "db_password": found.db_password,
                        "admin_password": found.admin_password,
                    },
                    out,
                )
            os.replace(tmp, found.path)
        except BaseException:  # Ctrl-C too: no half-written file left behind
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DeployError(
            f"cannot keep the stack's secrets in {found.path}: {exc.strerror}; set "
            "[stack] state_dir to a writable directory"
        ) from None


def redact(text: str, values: tuple[str, ...]) -> str:
    for value in values:
        if len(value) >= 4:
            text = text.replace(value, "********")
    return text
