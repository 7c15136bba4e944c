"""Writing the report: private files (0600), the tarball and its manifest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime

from shipyard_doctor.report.options import Format


def default_path(fmt: Format, now: datetime) -> str:
    """A timestamped name in the current directory."""
    return f"shipyard-doctor-report-{now:%Y%m%d-%H%M%S}{fmt.suffix}"


def write_private(path: str, data: bytes) -> None:
    """Write *data* to *path*, readable by its owner only (also when it existed).

    A file is written whole or not at all -- a temp file beside it, renamed over
    it -- so Ctrl-C never leaves half a report. What is not a regular file (a
    FIFO, a terminal) is written to in place; a symlink is refused (O_NOFOLLOW).
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        _write_fd(os.open(path, flags, 0o600), data)
        return
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        _write_fd(fd, data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write_fd(fd: int, data: bytes) -> None:
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)


def manifest(members: Mapping[str, bytes], created: str) -> bytes:
    files = [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in members.items()
    ]
    doc = {"schema": 1, "created": created, "files": files}
    return json.dumps(doc, indent=2).encode() + b"\n"


def tarball(members: Mapping[str, str], created: str, top: str) -> bytes:
    """A .tar.gz of *members* under *top*/, the manifest first (like sos, it can be
    read without unpacking everything)."""
    encoded = {name: text.encode() for name, text in members.items()}
    ordered = {"manifest.json": manifest(encoded, created), **encoded}
    buf = io.BytesIO()
    now = time.time()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=int(now)) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in ordered.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o600
            info.mtime = int(now)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
