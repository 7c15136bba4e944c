"""Validators for the values that enter from the command line and the config file.

Each function takes the raw value and returns it converted, or raises ValueError with
the end of a sentence that starts with the key or flag ("'checks.timeout' must be ...",
"--timeout must be ..."). The callers (config.py, cli.py) add the name and turn the
ValueError into a one-line exit-2 error, so a bad value never reaches a check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

#: The longest timeout accepted: far past anything a check or a Docker call needs,
#: and far below the values (1e308) that overflow the clocks they are added to.
MAX_SECONDS = 3600.0
#: How much of a bad value an error message repeats.
SHOWN = 60

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def shown(value: object, limit: int = SHOWN) -> str:
    """``repr(value)``, cut to about *limit* characters (a 10,000-character id is not
    echoed back whole)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(str(value))} characters)"


def seconds(value: Any) -> float:
    """A finite positive number of seconds, at most MAX_SECONDS."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("must be a number of seconds, e.g. 5") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a positive number of seconds")
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise ValueError(
            f"must be a number of seconds more than 0 and at most {MAX_SECONDS:g}"
        )
    return float(value)


def port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _port_text(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError("must end in a port number from 1 to 65535")
    return port(int(text))


def host_name(text: str) -> str:
    """An IPv4/IPv6 address or a DNS name (no brackets)."""
    if ":" in text:
        import ipaddress

        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"has an invalid IPv6 address {shown(text)}") from None
        return text
    if not _HOST.fullmatch(text) or len(text) > 253:
        raise ValueError(f"has an invalid host name {shown(text)}")
    return text


def tcp_address(value: Any) -> str:
    """HOST:PORT, an IPv6 host in brackets: "127.0.0.1:4243", "[::1]:4243"."""
    example = 'must be HOST:PORT with a port from 1 to 65535, e.g. "127.0.0.1:4243"'
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(example)
    host, _, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(example)
    elif ":" in host:
        raise ValueError(f"{example} (an IPv6 address in brackets: [::1]:4243)")
    try:
        host_name(host)
        _port_text(port_text)
    except ValueError:
        raise ValueError(example) from None
    return value


def docker_url(value: Any) -> str:
    """A Docker endpoint: unix:///absolute/path, or tcp|http|https://HOST[:PORT]."""
    from urllib.parse import urlsplit  # only here: validate is imported for --help

    usage = "must be a URL such as unix:///path/to/docker.sock or tcp://HOST:PORT"
    if not isinstance(value, str) or not value:
        raise ValueError(usage)
    if "\x00" in value or not value.isprintable():
        raise ValueError(f"{usage} (it has a control character)")
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # "Invalid IPv6 URL": tcp://[::1
        raise ValueError(f"{usage} ({exc})") from None
    if parts.scheme == "unix":
        path = parts.path if not parts.netloc else "/" + parts.netloc + parts.path
        if not path.startswith("/") or path == "/" or parts.query or parts.fragment:
            raise ValueError(f"{usage} (the socket's absolute path)")
        return value
    if parts.scheme not in ("tcp", "http", "https"):
        raise ValueError(usage)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{usage} (no user, query or fragment)")
    if parts.path not in ("", "/"):
        raise ValueError(f"{usage} (no path after the port)")
    try:
        given = parts.port  # ValueError: not a number, or past 65535
    except ValueError:
        raise ValueError(f"{usage} (a port from 1 to 65535)") from None
    if given is not None:
        port(given)
    elif parts.netloc.endswith(":"):
        raise ValueError(f"{usage} (a port from 1 to 65535 after the colon)")
    if not parts.hostname:
        raise ValueError(f"{usage} (it has no host)")
    host_name(parts.hostname)
    return value


def path(value: Any) -> str:
    """An absolute path, or "" (meaning: not set)."""
    if not isinstance(value, str) or (value and not value.startswith("/")):
        raise ValueError("must be an absolute path")
    if "\x00" in value:
        raise ValueError("must be a path without NUL bytes")
    return value


def interface_name(value: str) -> str:
    """A Linux interface name: 1-15 characters, no "/", ":" or whitespace."""
    if (
        not value
        or len(value) > 15
        or value in (".", "..")
        or any(c in "/:" or c.isspace() or not c.isprintable() for c in value)
    ):
        raise ValueError(
            f"{shown(value)} is not an interface name (1-15 characters, no '/', ':' "
            "or spaces; see `ip link`)"
        )
    return value


def check_ids(values: Iterable[str], flag: str) -> list[str]:
    """The ids in comma-separated *values*; each value must name at least one."""
    ids: list[str] = []
    for value in values:
        parts = [part.strip() for part in value.split(",")]
        if not any(parts):
            raise ValueError(
                f"{flag} {shown(value)} names no check id: give ids such as ports, "
                "docker-daemon (see `shipyard-doctor list`)"
            )
        ids.extend(part for part in parts if part)
    return ids
