"""Can the stack's old clients and images still work with this Docker Engine?

Modern engines raised the oldest API version they accept (1.12 up to Docker 24, 1.24
from 25, 1.44 by default from 29) and stopped pulling images whose manifest is
schema 1 (off by default from 26.0, removed in 28.2). Shipyard's 2014 programs and
images predate both, so these facts decide whether a deploy can work at all. Sources:
shared/research/domain.md section 10 (moby api/common_unix.go,
daemon/config/config.go, distribution/errors.go at the tags named there).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard_doctor.host.dockerapi import describe_error
from shipyard_doctor.host.facts import Unavailable, host_fact
from shipyard_doctor.records import record

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.stacks import Client, Stack

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """(20, 10, 24) for "20.10.24+dfsg1", (1, 9) for "1.9" or "v1.9"; () if none.

    Distribution builds add suffixes (+dfsg1, -ce, ~ds1, -rc.1) that must not break
    the comparison, so only the leading dotted numbers count.
    """
    match = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def default_min_api(engine: str) -> str:
    """The oldest API an engine of this version accepts unless told otherwise."""
    version = parse_version(engine)
    if version >= (29,):
        return "1.44"  # docker-v29.0.0 daemon/config/config.go
    if version >= (25,):
        return "1.24"  # v25.0.0 defaultMinAPIVersion
    return "1.12"  # v24.0.0 api/common_unix.go MinVersion


def lowest_min_api(engine: str) -> str:
    """The oldest API the engine can be made to accept (DOCKER_MIN_API_VERSION)."""
    return "1.12" if parse_version(engine) < (25,) else "1.24"


class Schema1Pull(StrEnum):
    SUPPORTED = "supported"
    DISABLED = "disabled by default"  # 26.0 - 28.1
    REMOVED = "removed"  # 28.2 and later


SCHEMA1_ENV = "DOCKER_ENABLE_DEPRECATED_PULL_SCHEMA_1_IMAGE"


def schema1_pull(engine: str) -> Schema1Pull:
    """Whether the engine still pulls images with a schema 1 manifest (PR
    moby/moby#47459 disabled it in v26.0.0; v28.2.0 removed the code)."""
    version = parse_version(engine)
    if version >= (28, 2):
        return Schema1Pull.REMOVED
    if version >= (26,):
        return Schema1Pull.DISABLED
    return Schema1Pull.SUPPORTED


@record
class ApiAnswer:
    """What the daemon said to GET /v<api>/version."""

    api: str
    status: int | None  # HTTP status; None when no answer came
    message: str  # the daemon's own error text, or the transport error

    @property
    def accepted(self) -> bool:
        return self.status == 200


@host_fact
def ask_with_api(host: Host, api: str) -> ApiAnswer:
    """GET /v<api>/version on the configured daemon, as a client of that API would.

    Read-only. The daemon's refusal is the evidence the user needs, so its message
    is kept verbatim (Docker 20.10 sends it as text/plain, newer ones as JSON).
    """
    try:
        answer = host.docker_api().request(f"/v{api}/version")
    except Exception as exc:  # OSError or a timeout; it is evidence
        return ApiAnswer(api, None, str(exc)[:200])
    if answer.status == 200:
        return ApiAnswer(api, 200, "")
    return ApiAnswer(api, answer.status, daemon_message(answer.text))


def daemon_message(body: str) -> str:
    """The daemon's error message from an error response body: Docker 20.10 sends
    the API-version refusal as text/plain, other errors as {"message": ...}."""
    import json

    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return body.strip()
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"]).strip()
    return body.strip()


@host_fact
def local_images(host: Host) -> frozenset[str] | Unavailable:
    """Repository names ("shipyard/redis") of the images the daemon already has;
    an image present locally needs no pull. Unavailable when it cannot be read."""
    try:
        raw = host.docker_api().images()
    except Exception as exc:  # OSError, a timeout, an HTTP error
        return Unavailable(describe_error(exc))
    return frozenset(
        tag.rsplit(":", 1)[0]
        for image in raw
        for tag in image.get("RepoTags") or ()
        if tag != "<none>:<none>"
    )


# --- the docker-compat evidence ---------------------------------------------------


@record
class ClientAnswer:
    """The daemon's answer to a Docker client of the stack, asked at its API version."""

    client: Client
    answer: ApiAnswer


@record
class CompatEvidence:
    """The daemon's API range, each stack client's answer, and the schema 1 images."""

    stack: str
    engine: str
    oldest: str  # MinAPIVersion (or the engine's default)
    newest: str
    clients: tuple[ClientAnswer, ...]
    legacy: tuple[str, ...]  # images with a schema 1 manifest
    present: frozenset[str]  # of those: already here
    pull: Schema1Pull

    @property
    def to_pull(self) -> tuple[str, ...]:
        return tuple(image for image in self.legacy if image not in self.present)

    @property
    def legacy_here(self) -> list[str]:
        """The schema 1 images already here, sorted."""
        return sorted(set(self.legacy) & self.present)

    def too_new(self, api: str) -> bool:
        """A refused API version is above the daemon's newest (else below its
        oldest)."""
        return parse_version(api) > parse_version(self.newest)

    def to_data(self) -> dict[str, object]:
        return {
            "stack": self.stack,
            "engine": self.engine,
            "api": {"min": self.oldest, "max": self.newest},
            "clients": [
                {
                    "name": c.client.name,
                    "api": c.client.api,
                    "status": c.answer.status,
                    "message": c.answer.message,
                }
                for c in self.clients
            ],
            "schema1_images": list(self.legacy),
            "schema1_pull": self.pull.value,
            "to_pull": list(self.to_pull),
        }


def compat_evidence(host: Host, stack: Stack) -> CompatEvidence:
    version = host.docker().version
    engine = str(version.get("Version", "?"))
    legacy = tuple(s.image for s in stack.services if s.manifest == "schema1")
    return CompatEvidence(
        stack=stack.name,
        engine=engine,
        oldest=str(version.get("MinAPIVersion") or default_min_api(engine)),
        newest=str(version.get("ApiVersion", "?")),
        clients=tuple(
            ClientAnswer(c, ask_with_api(host, c.api)) for c in stack.clients
        ),
        legacy=legacy,
        present=frozenset(local_images(host) or ()),
        pull=schema1_pull(engine),
    )
