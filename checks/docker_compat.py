"""docker-compat: can the stack's clients and images work with this Docker at all?

Shipyard's programs send a fixed Docker API version (the v1 agent sends /v1.9/...)
and modern engines refuse old ones: Docker 20.10 accepts 1.12 and up, 25 accepts 1.24
and up, 29 accepts 1.44 and up by default. The refusal only shows once the stack runs,
as "client version 1.9 is too old" deep in an agent's log. The check asks the daemon
itself with each client's version (a read-only GET /v<api>/version) and quotes its
answer. It also warns before a deploy tries to pull 2014 images whose manifest is
schema 1, which Docker 26-28.1 refuses by default and 28.2+ cannot pull at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Result, and_more

if TYPE_CHECKING:
    from shipyard_doctor.host.compat import CompatEvidence
    from shipyard_doctor.host.gateway import Host
    from shipyard_doctor.stacks import Client


class DockerCompatCheck(Check):
    id = "docker-compat"
    title = "Shipyard's clients and images work with this Docker"
    category = "docker"
    requires = ("docker-daemon",)

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host.compat import compat_evidence, default_min_api

        found = compat_evidence(host, host.stack())
        engine, oldest, newest = found.engine, found.oldest, found.newest
        details = [
            f"daemon: Docker {engine} accepts API {oldest} to {newest} "
            f"(default minimum of Docker {engine}: {default_min_api(engine)})"
        ]
        failures: list[str] = []
        hints: list[str] = []
        unknown: list[str] = []
        for item in found.clients:
            client, answer = item.client, item.answer
            said = "200 OK" if answer.accepted else f"HTTP {answer.status}"
            if answer.status is None:
                said = "no answer"
            details.append(
                f"{client.name} sends API {client.api}: GET /v{client.api}/version "
                f"-> {said}" + (f": {answer.message}" if answer.message else "")
            )
            if answer.accepted:
                continue
            if answer.status is None:
                unknown.append(f"could not ask Docker {engine} with API {client.api}")
                continue
            too_new = found.too_new(client.api)
            which, limit = ("newest", newest) if too_new else ("oldest", oldest)
            failures.append(
                f"Docker {engine} refuses {client.name}'s API {client.api} "
                f"({which} accepted: {limit})"
            )
            hints.extend(_api_hints(host, client, engine, oldest, too_new))
        warnings = _schema1(host, found, details, failures, hints)
        if failures:
            summary = and_more(failures[0], len(failures) - 1)
            return Result.failure(summary, details=details, hints=hints, evidence=found)
        if unknown:
            return Result.error(unknown[0], details=details, evidence=found)
        if warnings:
            return Result.warning(
                warnings[0], details=details, hints=hints, evidence=found
            )
        if not found.clients and not found.legacy:
            return Result.skipped(
                f"Shipyard {found.stack} records no client API version or schema 1 "
                "image to check",
                details=details,
                evidence=found,
            )
        speaks = ", ".join(
            f"{c.client.name}: API {c.client.api}" for c in found.clients
        )
        return Result.ok(
            f"Docker {engine} accepts Shipyard {found.stack}'s clients"
            + (f" ({speaks})" if speaks else "")
            + (" and still pulls schema 1 images" if found.legacy else ""),
            details=details,
            evidence=found,
        )


def _schema1(
    host: Host,
    found: CompatEvidence,
    details: list[str],
    failures: list[str],
    hints: list[str],
) -> list[str]:
    """What pulling the stack's schema 1 images means here; returns the warnings."""
    from shipyard_doctor.host.compat import SCHEMA1_ENV, Schema1Pull
    from shipyard_doctor.host.hints import docker_environment

    engine, legacy, pull = found.engine, found.legacy, found.pull
    here = found.legacy_here
    if legacy:
        details.append(
            f"images with a schema 1 manifest: {', '.join(legacy)}; "
            f"pulling them on Docker {engine}: {pull.value}"
            + (f"; already here: {', '.join(here)}" if here else "")
        )
    rebuilt = (
        "map the stack's images to rebuilt ones: re-push them as manifest schema "
        f"2 (pull with Docker <= 28.1 and {SCHEMA1_ENV}=1, then docker push to "
        "your registry) and map them in the configuration's [stack.images] "
        '("FROM" = "TO"), or for one deploy: shipyard-doctor deploy --image-map '
        "FROM=TO"
    )
    if found.to_pull and pull is Schema1Pull.REMOVED:
        failures.append(
            f"Docker {engine} cannot pull Shipyard {found.stack}'s images: pulling "
            "schema 1 images was removed in Docker 28.2"
        )
        hints.append(rebuilt)
    elif found.to_pull and pull is Schema1Pull.DISABLED:
        hints.append(docker_environment(host, f"{SCHEMA1_ENV}=1"))
        hints.append("or " + rebuilt)
        return [
            f"Docker {engine} will not pull Shipyard {found.stack}'s schema 1 "
            f"images unless dockerd runs with {SCHEMA1_ENV}=1"
        ]
    return []


def _api_hints(
    host: Host, client: Client, engine: str, oldest: str, too_new: bool
) -> list[str]:
    from shipyard_doctor.host.compat import lowest_min_api, parse_version
    from shipyard_doctor.host.hints import docker_environment

    if too_new:
        return [f"upgrade Docker: {client.name} needs API {client.api}"]
    hints = []
    if client.note:
        hints.append(
            f"make {client.name} send an accepted version: "
            + client.note.format(api=oldest)
        )
    floor = lowest_min_api(engine)
    if parse_version(client.api) >= parse_version(floor):
        hints.append(
            "or lower the daemon's floor: "
            + docker_environment(host, f"DOCKER_MIN_API_VERSION={client.api}")
        )
    else:
        hints.append(
            f"no setting makes Docker {engine} accept API {client.api}: the "
            f"oldest it can be set to accept is {floor}"
        )
    return hints
