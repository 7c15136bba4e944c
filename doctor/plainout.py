"""Output that is not a terminal is ASCII, whatever the locale.

README promises plain ASCII text when stdout is not a terminal; a renderer or a check
summary may still hold a "—" or a "→", and with ``PYTHONIOENCODING=ascii`` (or a C
locale on an old Python) writing one raised UnicodeEncodeError. Streams that are not
terminals are re-encoded as ASCII, the few typographic characters spelled out and
anything else a "?", so nothing can fail to encode. JSON is ASCII already (escaped).
"""

from __future__ import annotations

import codecs
import io

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see cli.py
if TYPE_CHECKING:
    from typing import TextIO

ERRORS = "shipyard-doctor-ascii"
_SPELLED = {
    "\u2014": "--",  # em dash
    "\u2013": "-",  # en dash
    "\u2192": "->",
    "\u2190": "<-",
    "\u2026": "...",
    "\u2713": "ok",
    "\u2717": "x",
    "\u00b7": "*",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00a0": " ",
}


def _spell(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start : exc.end]
    return "".join(_SPELLED.get(char, "?") for char in text), exc.end


def spelled_ascii(text: str) -> str:
    """*text* as the plain streams write it."""
    return text.encode("ascii", ERRORS).decode("ascii")


codecs.register_error(ERRORS, _spell)


def ascii_unless_terminal(*streams: TextIO) -> None:
    """Re-encode each stream that is not a terminal as ASCII (see module doc)."""
    for stream in streams:
        if not isinstance(stream, io.TextIOWrapper):
            continue
        try:
            terminal = stream.isatty()
        except ValueError:  # closed
            continue
        if not terminal:
            stream.reconfigure(encoding="ascii", errors=ERRORS)
        elif codecs.lookup(stream.encoding).name != "utf-8":
            stream.reconfigure(errors=ERRORS)  # a terminal in a non-UTF-8 locale
