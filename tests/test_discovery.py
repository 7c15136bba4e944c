"""Discovery reads entry_points.txt itself (importlib.metadata costs ~20 ms to
import): it must find exactly what importlib.metadata finds, on the real venv plus a
pip-installed third-party plugin, a shadowed copy of it and hand-written dist-infos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from doctor_cli import install_example_plugin

GROUPS = ("shipyard_doctor.checks", "shipyard_doctor.fixes")

# Runs in a child with PYTHONPATH set: prints what each way of finding sees.
_COMPARE = """
import json, sys
import importlib.metadata as metadata
from shipyard_doctor.registry import registrations
groups = sys.argv[1:]
mine = registrations(groups)
out = {"mine": {}, "importlib": {}, "imported": "importlib.metadata" in sys.modules}
for group in groups:
    out["mine"][group] = sorted([e.name, e.value, e.distribution] for e in mine[group])
    out["importlib"][group] = sorted(
        [e.name, e.value, e.dist.name] for e in metadata.entry_points(group=group)
    )
print(json.dumps(out))
"""


def found(pythonpath: list[Path], *groups: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    done = subprocess.run(
        [sys.executable, "-c", _COMPARE, *(groups or GROUPS)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    return install_example_plugin(tmp_path_factory.mktemp("site"))


def test_same_entry_points_as_importlib_metadata(plugin_site):
    seen = found([plugin_site])
    assert seen["mine"] == seen["importlib"]
    names = {e[0] for e in seen["mine"]["shipyard_doctor.checks"]}
    assert {"ports", "docker-daemon", "hostname-set", "always-broken"} <= names
    dists = {e[2] for e in seen["mine"]["shipyard_doctor.checks"]}
    assert dists == {"shipyard-doctor", "sd-example-plugin"}


def test_a_distribution_shadowed_later_on_sys_path_is_not_seen_twice(
    plugin_site, tmp_path
):
    # A second copy of the plugin's dist-info, after the first on sys.path, whose
    # entry points differ: importlib.metadata ignores it (first wins), so must we.
    shadow = tmp_path / "shadow"
    shutil.copytree(plugin_site, shadow)
    (info,) = shadow.glob("*.dist-info")
    (info / "entry_points.txt").write_text(
        "[shipyard_doctor.checks]\nonly-in-the-shadow = nowhere:Nothing\n"
    )
    seen = found([plugin_site, shadow])
    assert seen["mine"] == seen["importlib"]
    names = {e[0] for e in seen["mine"]["shipyard_doctor.checks"]}
    assert "only-in-the-shadow" not in names and "hostname-set" in names


def test_hand_written_dist_info_and_egg_info(tmp_path):
    # Comments, blank lines, spaces around '=', extras, a section name with spaces,
    # an egg-info whose name only PKG-INFO gives, a METADATA whose description
    # mentions "Name:", a distribution with other groups only.
    info = tmp_path / "Odd_Name-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Odd.Name\nVersion: 2.0\n\nName: not this\n"
    )
    (info / "entry_points.txt").write_text(
        "# comment\n; another\n\n[console_scripts]\nodd = odd:main\n\n"
        "[shipyard_doctor.checks]\nodd-check  =  odd.checks : OddCheck [extra]\n"
        "[ shipyard_doctor.checks ]\nspaced = not:Read\n"  # not the group, for both
    )
    egg = tmp_path / "eggy-1.0-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: eggy\n")
    (egg / "entry_points.txt").write_text("[shipyard_doctor.fixes]\negg-fix = e:F\n")
    other = tmp_path / "unrelated-1.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Name: unrelated\n")
    (other / "entry_points.txt").write_text("[pytest11]\nx = y\n")
    # An old-style egg directory as its own sys.path entry (EGG-INFO inside).
    egg_dir = tmp_path / "eggs" / "Old_Egg-0.9-py3.11.egg"
    (egg_dir / "EGG-INFO").mkdir(parents=True)
    (egg_dir / "EGG-INFO" / "PKG-INFO").write_text(
        "Metadata-Version: 1.0\nName: Old-Egg\n"
    )
    (egg_dir / "EGG-INFO" / "entry_points.txt").write_text(
        "[shipyard_doctor.checks]\nold-check = old:Check\n"
    )
    seen = found([tmp_path, egg_dir])
    assert seen["mine"] == seen["importlib"]
    assert ["old-check", "old:Check", "Old-Egg"] in seen["mine"][
        "shipyard_doctor.checks"
    ]
    assert ["odd-check", "odd.checks : OddCheck [extra]", "Odd.Name"] in seen["mine"][
        "shipyard_doctor.checks"
    ]
    assert ["egg-fix", "e:F", "eggy"] in seen["mine"]["shipyard_doctor.fixes"]


def test_a_zip_on_sys_path_falls_back_to_importlib_metadata(tmp_path):
    # Distributions inside a zip are read by importlib.metadata; we hand over to it.
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\n")
        zf.writestr(
            "zipped-1.0.dist-info/entry_points.txt",
            "[shipyard_doctor.checks]\nzipped-check = zipped:Check\n",
        )
    seen = found([archive])
    assert seen["mine"] == seen["importlib"]
    assert ["zipped-check", "zipped:Check", "zipped"] in seen["mine"][
        "shipyard_doctor.checks"
    ]


def test_listing_does_not_import_importlib_metadata():
    # The point of reading the files ourselves.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from shipyard_doctor.registry import discover; discover(); "
            "print('importlib.metadata' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"
