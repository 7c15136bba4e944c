"""Set one key in a TOML file's text, keeping everything else byte for byte.

Fixes change the doctor's own configuration (``[stack.ports] shipyard = 8001``) in a
file the user wrote, with comments and layout that must survive. No TOML writer is
installed and a parse-and-dump would drop every comment anyway, so the edit is made
on the text: the key's line is changed in place, or added to its table, or the table
is appended. The result is parsed again and must equal the original document with
exactly that one value set; anything else (an inline table, dotted keys, a layout
this does not understand) is refused rather than guessed.
"""

from __future__ import annotations

import copy
import re
import tomllib

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = re.compile(r"^\s*\[")


class TomlEditError(ValueError):
    """The text cannot be edited safely; the message says why."""


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it may be, else a basic string."""
    if _BARE_KEY.match(key):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_value(text: str, table: tuple[str, ...], key: str, value: int | str) -> str:
    """``text`` with ``[table] key = value`` set. Raises TomlEditError when the
    document is invalid or the edit would change anything else."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlEditError(f"not valid TOML: {exc}") from exc
    literal = _literal(value)
    lines = text.splitlines(keepends=True)
    span = _table_span(lines, table)
    if span is None and _exists(before, table):
        raise TomlEditError(_unhandled(table))
    if span is None:
        edited = _append_table(text, table, key, literal)
    else:
        edited = _set_in_table(lines, span, key, literal)
    expected = copy.deepcopy(before)
    node = expected
    for part in table:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise TomlEditError(f"{'.'.join(table)} is not a table")
    node[key] = value
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:
        raise TomlEditError(f"the edit would break the file: {exc}") from exc
    if after != expected:
        raise TomlEditError(_unhandled(table))
    return edited


def _exists(document: dict[str, object], table: tuple[str, ...]) -> bool:
    node: object = document
    for part in table:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _unhandled(table: tuple[str, ...]) -> str:
    return (
        f"[{'.'.join(table)}] is written in a form this edit does not handle (an "
        "inline table or dotted keys); set the value by hand"
    )


def _literal(value: int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"unsupported TOML value {value!r}")
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header_pattern(table: tuple[str, ...]) -> re.Pattern[str]:
    parts = r"\s*\.\s*".join(
        rf"(?:{re.escape(p)}|\"{re.escape(p)}\"|'{re.escape(p)}')" for p in table
    )
    return re.compile(rf"^\s*\[\s*{parts}\s*\]\s*(?:#.*)?$")


def _table_span(lines: list[str], table: tuple[str, ...]) -> tuple[int, int] | None:
    """Line indexes [start, end) of the table's body, after its ``[header]``."""
    header = _header_pattern(table)
    for number, line in enumerate(lines):
        if header.match(line.rstrip("\r\n")):
            end = next(
                (i for i in range(number + 1, len(lines)) if _HEADER.match(lines[i])),
                len(lines),
            )
            return number + 1, end
    return None


def _set_in_table(
    lines: list[str], span: tuple[int, int], key: str, literal: str
) -> str:
    start, end = span
    names = "|".join((re.escape(key), re.escape(f'"{key}"'), re.escape(f"'{key}'")))
    assignment = re.compile(rf"^(\s*(?:{names})\s*=\s*)([^\s#]+)(.*)$", re.DOTALL)
    for index in range(start, end):
        match = assignment.match(lines[index])
        if match:
            lines = list(lines)
            lines[index] = match.group(1) + literal + match.group(3)
            return "".join(lines)
    # A new key goes after the table's last key line, before trailing blank lines
    # and comments that belong to whatever follows.
    last = start
    for index in range(start, end):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            last = index + 1
    newline = _newline(lines)
    if last > 0 and not lines[last - 1].endswith(("\n", "\r")):
        lines = [*lines[: last - 1], lines[last - 1] + newline, *lines[last:]]
    new_line = f"{toml_key(key)} = {literal}{newline}"
    return "".join([*lines[:last], new_line, *lines[last:]])


def _append_table(text: str, table: tuple[str, ...], key: str, literal: str) -> str:
    newline = _newline(text.splitlines(keepends=True))
    head = text
    if head and not head.endswith(("\n", "\r")):
        head += newline
    if head.strip():
        head += newline  # a blank line before the new table
    header = ".".join(toml_key(part) for part in table)
    return f"{head}[{header}]{newline}{toml_key(key)} = {literal}{newline}"


def _newline(lines: list[str]) -> str:
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
