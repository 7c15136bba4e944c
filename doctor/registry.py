"""Plugin discovery: find → load → validate, for checks and fixes alike.

Built-in checks register through the same entry-point groups as third-party ones, so
the plugin API is exercised on every run. doctor/ never imports a concrete check. A
plugin that cannot be imported or is malformed becomes a :class:`BrokenPlugin` record:
the run reports it as an ``error`` for that id and goes on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

from shipyard_doctor.model import CHECK_ID, Check

CHECKS_GROUP = "shipyard_doctor.checks"
FIXES_GROUP = "shipyard_doctor.fixes"


@dataclass(frozen=True)
class CheckPlugin:
    """A check that loaded: its metadata, its class and where it was registered."""

    id: str
    title: str
    category: str
    requires: tuple[str, ...]
    cls: type[Check]
    origin: str  # "module:attr" as registered
    distribution: str


@dataclass(frozen=True)
class FixPlugin:
    """A fix that loaded: what it repairs, its class and where it was registered."""

    id: str
    title: str
    repairs: tuple[str, ...]
    cls: type
    origin: str
    distribution: str


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that failed to import or is malformed, and why; the run reports it as
    an ``error`` for its id."""

    id: str
    group: str
    reason: str
    origin: str
    distribution: str


@dataclass(frozen=True)
class Registry:
    """Every plugin found: the checks and fixes by id, and the broken ones."""

    checks: dict[str, CheckPlugin] = field(default_factory=dict)
    fixes: dict[str, FixPlugin] = field(default_factory=dict)
    broken: tuple[BrokenPlugin, ...] = ()

    @property
    def broken_checks(self) -> dict[str, BrokenPlugin]:
        return {b.id: b for b in self.broken if b.group == CHECKS_GROUP}

    @property
    def known_check_ids(self) -> tuple[str, ...]:
        return tuple(sorted({*self.checks, *self.broken_checks}))

    def fixes_for(self, check_id: str) -> tuple[str, ...]:
        return tuple(sorted(f.id for f in self.fixes.values() if check_id in f.repairs))


def discover() -> Registry:
    """Load every registered check and fix of every installed distribution."""
    checks: dict[str, CheckPlugin] = {}
    fixes: dict[str, FixPlugin] = {}
    broken: list[BrokenPlugin] = []
    # One scan of the installed distributions for both groups, and each one's name
    # read once: Distribution.name parses its METADATA file on every access.
    everything = entry_points()
    dist_names: dict[int, str] = {}
    for ep in _unique(everything.select(group=CHECKS_GROUP)):
        _add(_load(ep, CHECKS_GROUP, _as_check, dist_names), checks, broken)
    for ep in _unique(everything.select(group=FIXES_GROUP)):
        _add(_load(ep, FIXES_GROUP, _as_fix, dist_names), fixes, broken)
    return Registry(checks=checks, fixes=fixes, broken=tuple(broken))


def _unique(eps: Iterable[EntryPoint]) -> list[EntryPoint]:
    # The same distribution can be visible twice on sys.path (e.g. an editable
    # install next to a build directory); only a different target is a real clash.
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in eps:
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            out.append(ep)
    return out


Plugin = TypeVar("Plugin", CheckPlugin, FixPlugin)


def _add(
    record: Plugin | BrokenPlugin,
    into: dict[str, Plugin],
    broken: list[BrokenPlugin],
) -> None:
    if isinstance(record, BrokenPlugin):
        broken.append(record)
    elif record.id in into:
        other = into[record.id]
        broken.append(
            BrokenPlugin(
                record.id,
                CHECKS_GROUP if isinstance(record, CheckPlugin) else FIXES_GROUP,
                f"duplicate id: {record.origin} ({record.distribution}) and "
                f"{other.origin} ({other.distribution}) both register it",
                record.origin,
                record.distribution,
            )
        )
    else:
        into[record.id] = record


def _load(
    ep: EntryPoint,
    group: str,
    convert: Callable[[str, object, str, str], Plugin],
    dist_names: dict[int, str],
) -> Plugin | BrokenPlugin:
    dist = _dist_name(ep, dist_names)
    try:
        obj = ep.load()
    except Exception as exc:  # any import-time failure of a plugin is data, not a crash
        reason = f"cannot be imported: {type(exc).__name__}: {exc}"
        return BrokenPlugin(ep.name, group, reason, ep.value, dist)
    try:
        return convert(ep.name, obj, ep.value, dist)
    except ValueError as exc:
        return BrokenPlugin(ep.name, group, str(exc), ep.value, dist)


def _dist_name(ep: EntryPoint, known: dict[int, str]) -> str:
    if ep.dist is None:
        return "?"
    key = id(ep.dist)
    if key not in known:
        known[key] = ep.dist.name
    return known[key]


def _as_check(name: str, obj: object, origin: str, dist: str) -> CheckPlugin:
    if not (inspect.isclass(obj) and issubclass(obj, Check)):
        raise ValueError(f"{origin} is not a subclass of shipyard_doctor.model.Check")
    _common(name, obj, origin)
    requires = getattr(obj, "requires", ())
    if not isinstance(requires, tuple) or not all(isinstance(r, str) for r in requires):
        raise ValueError(f"{origin}: 'requires' must be a tuple of check ids")
    category = getattr(obj, "category", "general")
    title = str(getattr(obj, "title", ""))
    return CheckPlugin(name, title, str(category), requires, obj, origin, dist)


def _as_fix(name: str, obj: object, origin: str, dist: str) -> FixPlugin:
    if not inspect.isclass(obj):
        raise ValueError(f"{origin} is not a class")
    _common(name, obj, origin)
    repairs = getattr(obj, "repairs", None)
    if not isinstance(repairs, tuple) or not repairs:
        raise ValueError(f"{origin}: 'repairs' must be a non-empty tuple of check ids")
    title = str(getattr(obj, "title", ""))  # _common made sure it is a string
    return FixPlugin(name, title, repairs, obj, origin, dist)


def _common(name: str, obj: type, origin: str) -> None:
    plugin_id = getattr(obj, "id", None)
    if plugin_id != name:
        raise ValueError(
            f"{origin}: its id {plugin_id!r} differs from its entry-point name {name!r}"
        )
    if not CHECK_ID.match(name):
        raise ValueError(f"{origin}: id {name!r} is not kebab-case")
    title = getattr(obj, "title", None)
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"{origin}: has no title")
