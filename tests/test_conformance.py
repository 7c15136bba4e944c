"""Every registered check and fix meets the plugin contract (like sos's conformance
tests): unique kebab-case ids, titles, known dependencies, documented in README."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from shipyard_doctor.model import CHECK_ID, Check
from shipyard_doctor.registry import discover

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_all_builtin_plugins_load():
    registry = discover()
    assert registry.broken == ()
    assert {"ports", "docker-daemon"} <= set(registry.checks)


def test_check_metadata():
    registry = discover()
    for plugin in registry.checks.values():
        assert CHECK_ID.match(plugin.id)
        assert plugin.title.strip() and plugin.category.strip()
        assert issubclass(plugin.cls, Check)
        assert inspect.getdoc(inspect.getmodule(plugin.cls)), (
            f"{plugin.id}: no docstring"
        )
        for dep in plugin.requires:
            assert dep in registry.checks, f"{plugin.id} requires unknown {dep}"


def test_every_fix_repairs_an_existing_check():
    registry = discover()
    for fix in registry.fixes.values():
        for check_id in fix.repairs:
            assert check_id in registry.checks, f"{fix.id} repairs unknown {check_id}"


def test_every_check_is_documented_in_readme():
    for check_id in discover().checks:
        assert re.search(rf"^\| `{re.escape(check_id)}` \|", README, re.M), (
            f"README.md has no row for check {check_id}"
        )


def test_every_fix_is_a_fix_and_documented_in_readme():
    from shipyard_doctor.fixing import Fix

    for fix in discover().fixes.values():
        assert issubclass(fix.cls, Fix), f"{fix.id} is not a shipyard_doctor Fix"
        assert re.search(rf"^\| `{re.escape(fix.id)}` \|", README, re.M), (
            f"README.md has no row for fix {fix.id}"
        )
