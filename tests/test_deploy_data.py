"""The deploy's pure parts, without a daemon: flags and configuration for images,
legacy link variables, image mapping, the secrets file, and the one-line errors."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from shipyard_doctor.cli import main
from shipyard_doctor.config import load_config
from shipyard_doctor.context import Environment
from shipyard_doctor.deploy.labels import normalize, resolve_image
from shipyard_doctor.deploy.plan import legacy_link_env
from shipyard_doctor.deploy.secrets import load_secrets, redact, save_secrets
from shipyard_doctor.errors import ConfigError
from shipyard_doctor.stacks import load_stack


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Environment(stdout=out, stderr=err, environ={}))
    return code, out.getvalue(), err.getvalue()


def test_legacy_link_variables_name_the_alias_never_a_bridge_address():
    stack = load_stack("v1")
    env = dict(
        legacy_link_env(
            stack.service("db"), "db", lambda v: v.replace("${db_password}", "pw")
        )
    )
    assert env["DB_PORT_5432_TCP_ADDR"] == "db"
    assert env["DB_PORT_5432_TCP_PORT"] == "5432"
    assert env["DB_PORT"] == "tcp://db:5432"
    assert env["DB_ENV_DB_PASS"] == "pw"
    assert env["DB_ENV_DB_NAME"] == "shipyard"
    redis = dict(legacy_link_env(stack.service("redis"), "redis", lambda v: v))
    assert redis["REDIS_PORT_6379_TCP_ADDR"] == "redis"
    assert not any("172.17." in v for v in (*env.values(), *redis.values()))


def test_image_map_flag_wins_over_the_config_file():
    config = {"shipyard/redis": "mirror/redis:1"}
    cli = (("shipyard/redis:latest", "other/redis:2"),)
    assert resolve_image("shipyard/redis", (), config) == "mirror/redis:1"
    assert resolve_image("shipyard/redis", cli, config) == "other/redis:2"
    assert resolve_image("shipyard/db", cli, config) == "shipyard/db:latest"
    assert (
        normalize("127.0.0.1:5000/shipyard/db") == "127.0.0.1:5000/shipyard/db:latest"
    )


def test_stack_images_in_the_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[stack.images]\n"shipyard/redis" = "127.0.0.1:5000/redis:2014"\n')
    assert load_config(str(path), {}).stack.images == {
        "shipyard/redis": "127.0.0.1:5000/redis:2014"
    }
    path.write_text(
        '[stack]\nname = "v1"\n[stack.images]\n"shipyard/redis" = "Not An Image"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(str(path), {})
    assert "'stack.images' has 'Not An Image', which is not an image reference" in str(
        info.value
    )


def test_bad_flags_are_one_line_usage_errors():
    code, _, err = run_cli(["deploy", "--image-map", "shipyard/redis"])
    assert code == 2
    assert err.startswith("shipyard-doctor: error: --image-map 'shipyard/redis': give ")
    code, _, err = run_cli(["deploy", "--stack", "v3", "--admin-password", "abcdef"])
    assert code == 2
    assert "Shipyard v3 cannot be given an admin password at deploy" in err
    assert "abcdef" not in err
    code, _, err = run_cli(["status", "--stack", "v9"])
    assert (code, err.count("\n")) == (2, 1)
    assert "unknown stack 'v9'" in err


def test_help_has_examples_and_exit_codes(capsys):
    assert main(["deploy", "--help"]) == 0
    text = capsys.readouterr().out
    assert "shipyard-doctor deploy --dry-run" in text
    assert "3 planned but not" in text


def test_secrets_are_generated_once_kept_0600_and_redacted(tmp_path: Path):
    first = load_secrets(str(tmp_path / "s"), "v1", "shipyard", None)
    assert first.admin_is_default and first.new and len(first.db_password) >= 24
    save_secrets(first)
    mode = stat.S_IMODE(first.path.stat().st_mode)
    assert mode == 0o600
    again = load_secrets(str(tmp_path / "s"), "v1", "shipyard", None)
    assert (again.db_password, again.new) == (first.db_password, False)
    given = load_secrets(str(tmp_path / "s"), "v1", "shipyard", "Zq7-secret")
    assert given.new and not given.admin_is_default
    assert redact(f"pw={given.admin_password}", given.values()) == "pw=********"
    assert "shipyard" not in given.values()
    assert "shipyard" in first.admin_password and first.values() == (first.db_password,)


def test_the_schema_1_removal_message_is_one_line_with_the_image_map_route():
    from shipyard_doctor.deploy.daemon import _pull_error

    # Docker 28.2's own words (moby @v28.2.0 distribution/errors.go), as the pull
    # stream's "error" field carries them.
    docker_says = (
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support "
        "has been removed. Suggest the author of docker.io/shipyard/redis:latest to "
        "upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. "
        "More information at https://docs.docker.com/go/deprecated-image-specs/"
    )
    line = _pull_error("shipyard/redis:latest", docker_says)
    assert "\n" not in line
    assert line.startswith("cannot pull shipyard/redis:latest: this Docker no longer ")
    assert "--image-map shipyard/redis:latest=REGISTRY/IMAGE:TAG" in line
    other = _pull_error("x:latest", "manifest unknown\nmore")
    assert other == "cannot pull x:latest: manifest unknown"
