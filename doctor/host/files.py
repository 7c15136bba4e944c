"""Bounded reads of the files configuration names.

A configured path can name anything: ``/dev/zero`` (endless), a FIFO (open blocks
until a writer comes), a directory, a multi-gigabyte log. Every reader of such a path
goes through here: only regular files and character devices are read, never more than
*limit* bytes, and a FIFO is refused instead of waited on.
"""

from __future__ import annotations

import errno
import os
import stat

#: Enough for any daemon.json, unit file, environment file or ld.so.conf.
TEXT_LIMIT = 1024 * 1024


class TooLarge(OSError):
    """The file holds more than the reader's limit."""


def _open(path: str) -> tuple[int, os.stat_result]:
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of hanging.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISCHR(info.st_mode)):
            raise OSError(errno.EINVAL, "not a regular file", path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _read_upto(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_bytes(path: str | os.PathLike[str], limit: int = TEXT_LIMIT) -> bytes:
    """The whole file; TooLarge when it holds more than *limit* bytes, OSError when
    it cannot be read or is not a regular file (a FIFO, a socket, a directory)."""
    fd, _ = _open(os.fspath(path))
    try:
        data = _read_upto(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise TooLarge(errno.EFBIG, f"larger than {_size(limit)}", os.fspath(path))
    return data


def read_text(
    path: str | os.PathLike[str], limit: int = TEXT_LIMIT, errors: str = "strict"
) -> str:
    """read_bytes decoded as UTF-8 (UnicodeDecodeError with errors="strict")."""
    return read_bytes(path, limit).decode("utf-8", errors)


def read_head(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most the first *limit* bytes (a lease file is read for its first leases)."""
    fd, _ = _open(os.fspath(path))
    try:
        return _read_upto(fd, limit)
    finally:
        os.close(fd)


def read_tail(path: str | os.PathLike[str], limit: int) -> tuple[bytes, bool]:
    """At most the last *limit* bytes, and whether the file was longer (its first
    line read is then probably cut). A character device is read from its start."""
    fd, info = _open(os.fspath(path))
    try:
        size = info.st_size if stat.S_ISREG(info.st_mode) else 0
        if size > limit:
            os.lseek(fd, size - limit, os.SEEK_SET)
        return _read_upto(fd, limit), size > limit
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit} bytes"
