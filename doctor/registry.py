"""Plugin discovery: find → load → validate, for checks and fixes alike.

Built-in checks register through the same entry-point groups as third-party ones, so
the plugin API is exercised on every run. doctor/ never imports a concrete check. A
plugin that cannot be imported or is malformed becomes a :class:`BrokenPlugin` record:
the run reports it as an ``error`` for that id and goes on.

Finding reads the ``entry_points.txt`` of each installed distribution itself, as
``importlib.metadata`` would (the same paths, the same first-on-sys.path-wins rule):
importing ``importlib.metadata`` (email, zipfile, csv, …) alone took ~20 ms of every
start. A ``sys.path`` entry that is a file (a zip or an egg) falls back to it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, TypeVar

from shipyard_doctor.model import CHECK_ID, Check
from shipyard_doctor.records import field, record

CHECKS_GROUP = "shipyard_doctor.checks"
FIXES_GROUP = "shipyard_doctor.fixes"


@record
class CheckPlugin:
    """A check that loaded: its metadata, its class and where it was registered."""

    id: str
    title: str
    category: str
    requires: tuple[str, ...]
    cls: type[Check]
    origin: str  # "module:attr" as registered
    distribution: str


@record
class FixPlugin:
    """A fix that loaded: what it repairs, its class and where it was registered."""

    id: str
    title: str
    repairs: tuple[str, ...]
    cls: type
    origin: str
    distribution: str


@record
class BrokenPlugin:
    """A plugin that failed to import or is malformed, and why; the run reports it as
    an ``error`` for its id."""

    id: str
    group: str
    reason: str
    origin: str
    distribution: str


@record
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
    found = registrations((CHECKS_GROUP, FIXES_GROUP))
    for ep in _unique(found[CHECKS_GROUP]):
        _add(_load(ep, CHECKS_GROUP, _as_check), checks, broken)
    for ep in _unique(found[FIXES_GROUP]):
        _add(_load(ep, FIXES_GROUP, _as_fix), fixes, broken)
    return Registry(checks=checks, fixes=fixes, broken=tuple(broken))


class Registration(NamedTuple):
    """One ``name = value`` line of a distribution's entry_points.txt."""

    name: str
    value: str  # "module:attr" (an "[extras]" suffix is kept, and ignored on load)
    distribution: str  # its METADATA Name


def registrations(groups: Iterable[str]) -> dict[str, list[Registration]]:
    """Every distribution's entry points in ``groups``, in sys.path order; a
    distribution found again later on sys.path is shadowed, as for importlib."""
    wanted: dict[str, list[Registration]] = {group: [] for group in groups}
    if any(os.path.isfile(entry) for entry in sys.path if entry):
        return _registrations_by_importlib(wanted)
    seen: set[str] = set()
    for info in _distribution_dirs(seen):
        text = _read(os.path.join(info, "entry_points.txt"))
        if not any(group in text for group in wanted):
            continue
        name = None
        for group, ep_name, value in _entry_point_lines(text):
            if group in wanted:
                name = name or _metadata_name(info)
                wanted[group].append(Registration(ep_name, value, name))
    return wanted


def _distribution_dirs(seen: set[str]) -> Iterator[str]:
    """The metadata dirs on sys.path as importlib.metadata finds them: NAME-*.dist-info
    and NAME-*.egg-info in each entry, and EGG-INFO in an entry that is a .egg."""
    for entry in sys.path:
        base = entry or "."
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        egg = os.path.basename(base).lower()
        for name in names:
            low = name.lower()
            if low.endswith((".dist-info", ".egg-info")):
                stem = low.rpartition(".")[0]
            elif low == "egg-info" and egg.endswith(".egg"):
                stem = egg.rpartition(".")[0]
            else:
                continue
            key = re.sub(r"[-_.]+", "_", stem.partition("-")[0])
            if key not in seen:  # first on sys.path wins, even without plugins
                seen.add(key)
                yield os.path.join(base, name)


def _entry_point_lines(text: str) -> Iterator[tuple[str, str, str]]:
    """(group, name, value) of an entry_points.txt (the INI subset pip writes)."""
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line.strip("[]")  # as importlib.metadata: "[ x ]" is " x "
        elif "=" in line and group:
            name, _, value = line.partition("=")
            yield group, name.strip(), value.strip()


def _metadata_name(info: str) -> str:
    """The Name header of a distribution's METADATA (PKG-INFO for an egg-info)."""
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(
                os.path.join(info, file), encoding="utf-8", errors="replace"
            ) as f:
                for line in f:
                    if not line.strip():
                        break  # the headers end here; the description follows
                    if line[:5].lower() == "name:":
                        return line[5:].strip()
        except OSError:
            continue
    return os.path.basename(info).partition("-")[0]


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(1 << 20)
    except OSError:
        return ""


def _registrations_by_importlib(
    wanted: dict[str, list[Registration]],
) -> dict[str, list[Registration]]:
    from importlib.metadata import entry_points

    names: dict[int, str] = {}  # Distribution.name parses METADATA on every access
    for group in wanted:
        for ep in entry_points(group=group):
            dist = "?"
            if ep.dist is not None:
                dist = names.setdefault(id(ep.dist), ep.dist.name)
            wanted[group].append(Registration(ep.name, ep.value, dist))
    return wanted


def _unique(eps: Iterable[Registration]) -> list[Registration]:
    # The same distribution can be visible twice on sys.path (e.g. an editable
    # install next to a build directory); only a different target is a real clash.
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in eps:
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            out.append(ep)
    return out


_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(?::\s*(?P<attr>[\w.]+)\s*)?(?:\[.*\])?\Z")


def load(ep: Registration) -> object:
    """The object an entry point names: its module imported, then the attributes."""
    match = _VALUE.match(ep.value)
    if match is None:
        raise ValueError(f"malformed entry point value {ep.value!r}")
    obj: object = importlib.import_module(match["module"])
    if match["attr"]:
        for attr in match["attr"].split("."):
            obj = getattr(obj, attr)
    return obj


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
    ep: Registration,
    group: str,
    convert: Callable[[str, object, str, str], Plugin],
) -> Plugin | BrokenPlugin:
    dist = ep.distribution
    try:
        obj = load(ep)
    except Exception as exc:  # any import-time failure of a plugin is data, not a crash
        reason = f"cannot be imported: {type(exc).__name__}: {exc}"
        return BrokenPlugin(ep.name, group, reason, ep.value, dist)
    try:
        return convert(ep.name, obj, ep.value, dist)
    except ValueError as exc:
        return BrokenPlugin(ep.name, group, str(exc), ep.value, dist)


def _as_check(name: str, obj: object, origin: str, dist: str) -> CheckPlugin:
    if not (isinstance(obj, type) and issubclass(obj, Check)):
        raise ValueError(f"{origin} is not a subclass of shipyard_doctor.model.Check")
    _common(name, obj, origin)
    requires = getattr(obj, "requires", ())
    if not isinstance(requires, tuple) or not all(isinstance(r, str) for r in requires):
        raise ValueError(f"{origin}: 'requires' must be a tuple of check ids")
    category = getattr(obj, "category", "general")
    title = str(getattr(obj, "title", ""))
    return CheckPlugin(name, title, str(category), requires, obj, origin, dist)


def _as_fix(name: str, obj: object, origin: str, dist: str) -> FixPlugin:
    if not isinstance(obj, type):
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
