"""Configuration: file discovery order, overrides, and one clear line per mistake."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from shipyard_doctor.cli import main
from shipyard_doctor.config import ENV_VAR, load_config
from shipyard_doctor.context import Environment
from shipyard_doctor.errors import ConfigError


def run_cli(argv: list[str], environ: dict[str, str] | None = None):
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ=environ or {})
    code = main(argv, env)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[docker]\nhost = 'unix:///x.sock\n", "TOML syntax error"),
        ("[docker]\nhots = 'unix:///x.sock'\n", "unknown key 'docker.hots'"),
        ("[checks]\ntimeout = 'fast'\n", "'checks.timeout' must be a positive number"),
        ("[checks]\nskip = 'ports'\n", "'checks.skip' must be a list of check ids"),
        ("[dockr]\nhost = 'x'\n", "unknown section [dockr]"),
        ("[stack]\nname = 'v9'\n", "unknown stack 'v9'"),
        ("[stack.ports]\nshipyard = 70000\n", "'stack.ports.shipyard' must be a port"),
        ("[stack.ports]\nnginx = 8080\n", "unknown service 'stack.ports.nginx'"),
        ("[docker]\nhost = 'ftp://x'\n", "'docker.host' must be a URL"),
        ("[checks]\nskip = ['nope']\n", "unknown check id 'nope' in [checks] skip"),
        # Every check reads the process tables under it: checked when read.
        (
            "[host]\nproc_dir = '/nonexistent/proc'\n",
            "'host.proc_dir' must be an existing directory",
        ),
        ("[host]\nproc_dir = '/etc/hostname'\n", "must be an existing directory"),
        # A control character in a name is escaped: the error stays one line.
        ('["\\r"]\n', "unknown section [\\r]"),
        ('[docker]\n"a\\u2028b" = 1\n', "unknown key 'docker.a\\u2028b'"),
    ],
)
def test_config_mistakes_exit_2_with_one_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    code, out, err = run_cli(["check", "--config", str(path)])
    assert code == 2
    assert out == ""
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    if "unknown check id" not in expected:
        assert str(path) in err


def test_errors_name_the_line(tmp_path):
    path = write(tmp_path, "[checks]\ntimeout = 3\n\n[docker]\nhots = 'x'\n")
    with pytest.raises(ConfigError, match=r"line 5: unknown key 'docker.hots'"):
        load_config(str(path), {})
    path = write(tmp_path, "[docker]\nhost = \n")
    with pytest.raises(ConfigError, match=r"line 2"):
        load_config(str(path), {})


def test_missing_file_named_by_flag_or_env(tmp_path):
    code, _, err = run_cli(["check", "--config", str(tmp_path / "none.toml")])
    assert code == 2 and "does not exist (given by --config)" in err
    with pytest.raises(ConfigError, match=ENV_VAR):
        load_config(None, {ENV_VAR: str(tmp_path / "none.toml")})


def test_order_flag_then_env_then_default(tmp_path):
    flag = write(tmp_path, "[checks]\ntimeout = 1\n")
    other = tmp_path / "env.toml"
    other.write_text("[checks]\ntimeout = 2\n")
    assert load_config(str(flag), {ENV_VAR: str(other)}).checks.timeout == 1
    assert load_config(None, {ENV_VAR: str(other)}).checks.timeout == 2
    assert load_config(None, {}).checks.timeout == 5


def test_docker_host_defaults_and_overrides(tmp_path):
    assert load_config(None, {}).docker.host == "unix:///var/run/docker.sock"
    from_env = load_config(None, {"DOCKER_HOST": "tcp://127.0.0.1:2375"}).docker
    assert (from_env.host, from_env.host_origin) == (
        "tcp://127.0.0.1:2375",
        "DOCKER_HOST",
    )
    path = write(tmp_path, "[docker]\nhost = 'unix:///run/other.sock'\n")
    cfg = load_config(str(path), {"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert cfg.docker.host == "unix:///run/other.sock"
    assert cfg.docker.tcp == "127.0.0.1:4243"


def test_stack_port_overrides_move_only_that_service(tmp_path):
    path = write(tmp_path, "[stack.ports]\nshipyard = 8001\n")
    cfg = load_config(str(path), {})
    from shipyard_doctor.stacks import load_stack

    ports = {p.service: p.port for p in load_stack("v1").host_ports(cfg.stack.ports)}
    assert ports == {"redis": 6379, "lb": 80, "shipyard": 8001}


def test_bad_docker_host_flag_is_a_usage_error():
    code, _, err = run_cli(["check", "--docker-host", "ftp://nowhere"])
    assert code == 2
    assert err == (
        "shipyard-doctor: error: --docker-host 'ftp://nowhere' must be a URL such as "
        "unix:///path/to/docker.sock or tcp://HOST:PORT\n"
    )
