"""What a deploy tells its viewer while it works (rendering lives in render/)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Reporter(Protocol):
    def step(self, text: str) -> None:
        """One line of progress: "created shipyard_redis", "shipyard_redis ready"."""

    def pull_started(self, image: str) -> None: ...

    def pull_event(self, image: str, event: Mapping[str, Any]) -> None:
        """One decoded event of Docker's pull stream (status, id, progressDetail)."""

    def pull_finished(self, image: str) -> None: ...
