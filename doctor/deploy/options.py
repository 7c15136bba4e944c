"""What the user asked for, as typed, frozen options (made by the CLI from flags)."""

from __future__ import annotations

from shipyard_doctor.records import field, record


@record
class DeployOptions:
    """``deploy``'s flags: the stack, image mapping, admin password and how to ask."""

    stack: str
    dry_run: bool = False
    yes: bool = False
    image_map: tuple[tuple[str, str], ...] = ()  # --image-map FROM=TO, in order
    pull: bool = False
    admin_password: str | None = field(default=None, repr=False)
    with_agent: bool = False
    force: bool = False
    can_ask: bool = False  # a terminal to confirm on
    rich: bool = False  # a terminal to draw progress on


@record
class StatusOptions:
    """``status``'s flags: the stack to inspect, and whether to print JSON."""

    stack: str
    json: bool = False


@record
class UndeployOptions:
    """``undeploy``'s flags: the stack, whether its volumes go too, how to confirm."""

    stack: str
    volumes: bool = False
    yes: bool = False
    can_ask: bool = False
