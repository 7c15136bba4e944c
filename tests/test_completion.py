"""Shell completion is generated from the argument parser: every command completes in
bash, zsh and fish, and the scripts are valid for the shells themselves. Every
command's --help has examples."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest
from infra import missing
from shipyard_doctor.cli import build_parser

DOCTOR = [sys.executable, "-m", "shipyard_doctor"]


def commands() -> list[str]:
    (sub,) = (
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return list(sub.choices)


def script(shell: str) -> str:
    done = subprocess.run(
        [*DOCTOR, "completion", shell], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not found: apt-get install {name}")
    return path


@pytest.mark.parametrize("name", ["bash", "zsh", "fish"])
def test_completion_script_names_every_command(name, tmp_path):
    text = script(name)
    for command in ("check", "fix", "undo", "list", "completion", *commands()):
        assert command in text, command
    for option in ("only", "docker-host", "stop-conflicting", "dry-run"):
        assert option in text  # fish spells them -l only
    path = tmp_path / f"completion.{name}"
    path.write_text(text)
    checked = subprocess.run(
        [shell(name), "-n", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_bash_completes_commands_and_options(tmp_path):
    path = tmp_path / "shipyard-doctor.bash"
    path.write_text(script("bash"))
    program = f"""
source {path}
fn=$(complete -p shipyard-doctor | sed 's/.* -F \\([^ ]*\\) .*/\\1/')
COMP_WORDS=(shipyard-doctor ""); COMP_CWORD=1; $fn
echo "commands: ${{COMPREPLY[*]}}"
COMP_WORDS=(shipyard-doctor check --st); COMP_CWORD=2; $fn
echo "options: ${{COMPREPLY[*]}}"
"""
    done = subprocess.run(
        [shell("bash"), "-c", program], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.split()[1:] == commands()
    assert second == "options: --stack --stop-conflicting"


def test_fish_completes_commands(tmp_path):
    path = tmp_path / "shipyard-doctor.fish"
    path.write_text(script("fish"))
    done = subprocess.run(
        [shell("fish"), "-c", f"source {path}; complete -C 'shipyard-doctor '"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    offered = {line.split("\t")[0] for line in done.stdout.splitlines()}
    assert offered == set(commands())


def test_unknown_shell_is_a_usage_error():
    done = subprocess.run(
        [*DOCTOR, "completion", "tcsh"], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "invalid choice: 'tcsh' (choose from 'bash', 'zsh', 'fish')" in done.stderr


@pytest.mark.parametrize("command", commands())
def test_every_command_help_has_examples(command):
    done = subprocess.run(
        [*DOCTOR, command, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    examples = done.stdout.split("examples", 1)[1]
    assert f"shipyard-doctor {command}" in examples, done.stdout
