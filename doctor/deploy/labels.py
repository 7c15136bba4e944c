"""The labels deploy puts on everything it creates, and image reference helpers."""

from __future__ import annotations

from collections.abc import Mapping

STACK = "org.shipyard-doctor.stack"
SERVICE = "org.shipyard-doctor.service"
DEPLOY_ID = "org.shipyard-doctor.deploy-id"
VERSION = "org.shipyard-doctor.version"


def labels(stack: str, deploy_id: str, service: str = "") -> dict[str, str]:
    from shipyard_doctor import __version__

    found = {STACK: stack, DEPLOY_ID: deploy_id, VERSION: __version__}
    if service:
        found[SERVICE] = service
    return found


def normalize(ref: str) -> str:
    """``shipyard/redis`` -> ``shipyard/redis:latest`` (a digest or tag is kept)."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def resolve_image(
    image: str, cli: tuple[tuple[str, str], ...], config: Mapping[str, str]
) -> str:
    """The image to run for a stack image: --image-map wins over [stack.images]."""
    wanted = normalize(image)
    for source, target in (*cli, *config.items()):
        if normalize(source) == wanted:
            return normalize(target)
    return wanted
