"""The formats a report is written in: declared apart from :mod:`.options` so that
the CLI's parser (``--format``'s choices, in :mod:`.flags`) needs no dataclasses."""

from __future__ import annotations

from enum import StrEnum


class Format(StrEnum):
    """A report's format: Markdown, JSON, or a tarball of both with the raw files."""

    MARKDOWN = "md"
    JSON = "json"
    TARBALL = "tar"

    @property
    def suffix(self) -> str:
        return {"md": ".md", "json": ".json", "tar": ".tar.gz"}[self.value]
