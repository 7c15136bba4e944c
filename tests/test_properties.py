"""Property-based tests: whatever the config file, --docker-host or the id flags
hold, the doctor answers with exit 0, 1 or 2 and, for 2, one line naming what is
wrong -- never an internal error (70) or a traceback.

The CLI runs in-process (main with captured streams) to keep the budget small; every
run that gets past validation runs real, cheap checks with a Docker endpoint that
does not exist, and Docker URLs are only ever contacted on loopback.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shipyard_doctor.cli import main
from shipyard_doctor.config import SCHEMA, load_config
from shipyard_doctor.context import Environment
from shipyard_doctor.errors import ConfigError
from shipyard_doctor.host.dockerapi import parse_endpoint
from shipyard_doctor.outcome import exit_code
from shipyard_doctor.stacks import parse_stack

NOWHERE = "unix:///nonexistent/shipyard-doctor-test.sock"
CHEAP = ("lib-readonly", "agent-libs", "docker-daemon")  # fast without a daemon
KNOWN = (
    "agent-libs",
    "dhcp",
    "docker-compat",
    "docker-daemon",
    "docker-state",
    "docker-tcp",
    "lib-readonly",
    "nat-docker",
    "nat-vbox",
    "ports",
)
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ={})
    with contextlib.redirect_stderr(err):  # argparse writes its errors there
        code = main(argv, env)
    return int(code), out.getvalue(), err.getvalue()


def assert_well_behaved(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        last = err.strip().splitlines()[-1]
        assert last.startswith(("shipyard-doctor: error:", "shipyard-doctor check:"))
        assert len(last) < 600, last[:200]


# --- the config file -------------------------------------------------------------

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "127.0.0.1:4243",
            "[::1]:4243",
            "127.0.0.1:99999",
            "tcp://127.0.0.1:2375",
            "tcp://[::1",
            "unix:///var/run/docker.sock",
            "/opt/shipyard/lib",
            "/a\x00b",
            "",
            "1.24",
            "v1",
            "ports",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=8,
)
section_names = st.one_of(st.sampled_from(sorted(SCHEMA)), st.text(max_size=10))


@st.composite
def config_tables(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for section in draw(st.lists(section_names, max_size=4, unique=True)):
        known = sorted(SCHEMA.get(section, {}))
        keys = (
            st.one_of(st.sampled_from(known), st.text(max_size=10))
            if known
            else (st.text(max_size=10))
        )
        tables[section] = draw(st.dictionaries(keys, values, max_size=4))
    return tables


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string, mostly
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    items = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, body in tables.items():
        lines.append(f"[{json.dumps(section)}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def check_config_file(path: Path) -> None:
    argv = ["check", "--config", str(path), "--only", "lib-readonly"]
    code, out, err = run_cli([*argv, "--docker-host", NOWHERE])
    assert_well_behaved(code, out, err)
    try:
        config = load_config(str(path), {})
    except ConfigError:
        assert code == 2 and str(path)[:40] in err, err
        return
    # Accepted: every value is in range, so nothing downstream can trip on it.
    assert code in (0, 1), err
    for timeout in (config.checks.timeout, config.docker.timeout):
        assert math.isfinite(timeout) and 0 < timeout <= 3600
    assert all(1 <= p <= 65535 for p in config.stack.ports.values())
    parse_endpoint(config.docker.host)
    port = int(config.docker.tcp.rpartition(":")[2])
    assert 1 <= port <= 65535


@settings(SETTINGS, max_examples=60)
@given(tables=config_tables())
def test_structured_config_files(scratch: Path, tables: dict[str, dict[str, Any]]):
    path = scratch / "structured.toml"
    path.write_text(toml_text(tables), encoding="utf-8", errors="surrogatepass")
    check_config_file(path)


@settings(SETTINGS, max_examples=40)
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_raw_config_bytes(scratch: Path, data: bytes):
    path = scratch / "raw.toml"
    path.write_bytes(data)
    check_config_file(path)


# --- --docker-host ------------------------------------------------------------------

hosts = st.one_of(
    st.sampled_from(
        ["127.0.0.1", "[::1]", "[::1", "::1", "localhost", "", "[fe80::1%25lo]"]
    ),
    st.text(max_size=12),
)
ports = st.one_of(
    st.just(""),
    st.integers(min_value=-5, max_value=10**6).map(lambda p: f":{p}"),
    st.text(max_size=6).map(lambda t: f":{t}"),
)
urls = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, host, port, tail: f"{scheme}://{host}{port}{tail}",
        st.sampled_from(["tcp", "unix", "http", "https", "ssh", "", "TCP", "fd"]),
        hosts,
        ports,
        st.sampled_from(["", "/", "/path", "?q=1", "#f", "/\x00"]),
    ),
)


@SETTINGS
@given(url=urls)
def test_docker_host_flag(url: str):
    code, out, err = run_cli(["check", "--docker-host", url, "--only", "zz-none"])
    assert_well_behaved(code, out, err)
    assert code == 2
    if "unknown check id 'zz-none'" not in err:
        assert "--docker-host" in err, err  # refused, naming the flag
        return
    endpoint = parse_endpoint(url)  # accepted: it parses, to a real port
    assert endpoint.is_unix or 1 <= endpoint.port <= 65535
    after_host = urlsplit(url).netloc.rsplit("]", 1)[-1]
    if not endpoint.is_unix and ":" in after_host:  # the port given is the one used
        given_port = after_host.rsplit(":", 1)[1]
        assert given_port.isdigit() and int(given_port) == endpoint.port, url
    host = urlsplit(url).hostname
    if not endpoint.is_unix and host in ("127.0.0.1", "::1"):  # loopback only
        argv = ["check", "--docker-host", url, "--only", "docker-daemon"]
        code, out, err = run_cli([*argv, "--timeout", "5"])
        assert_well_behaved(code, out, err)
        assert code in (0, 1)


# --- --only / --skip / --ignore --------------------------------------------------

id_texts = st.lists(
    st.one_of(
        st.sampled_from((*KNOWN, "", " ", ",", ",,")),
        st.text(max_size=12),
    ),
    min_size=1,
    max_size=3,
).map(",".join)
cheap_only = st.lists(st.sampled_from(CHEAP), min_size=1, max_size=3).map(",".join)


@settings(SETTINGS, max_examples=80)
@given(
    only=st.lists(st.one_of(cheap_only, id_texts), min_size=1, max_size=2),
    skip=st.lists(id_texts, max_size=2),
    ignore=st.lists(id_texts, max_size=2),
)
def test_id_flags(only: list[str], skip: list[str], ignore: list[str]):
    argv = ["check", "--docker-host", NOWHERE, "--timeout", "5"]
    for flag, texts in (("--only", only), ("--skip", skip), ("--ignore", ignore)):
        for text in texts:
            argv += [f"{flag}={text}"]  # "=": a value may start with "-"
    code, out, err = run_cli(argv)
    assert_well_behaved(code, out, err)
    every = [p.strip() for t in only + skip + ignore for p in t.split(",")]
    names_all = all(any(p.strip() for p in t.split(",")) for t in only + skip + ignore)
    if names_all and all(p in KNOWN for p in every if p):
        assert code in (0, 1), err  # a valid selection runs
    else:
        assert code == 2, out


# --- --stack ---------------------------------------------------------------------


@settings(SETTINGS, max_examples=60)
@given(name=st.one_of(st.sampled_from(["v1", "v2", "v3", "V1", "v1 ", ""]), st.text()))
def test_stack_flag(name: str):
    code, out, err = run_cli(["check", f"--stack={name}", "--only", "zz-none"])
    assert_well_behaved(code, out, err)
    assert code == 2
    if name in ("v1", "v2", "v3"):
        assert "unknown check id 'zz-none'" in err, err
    else:
        assert "unknown stack" in err, err


# --- --image-map --------------------------------------------------------------------

segment = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", fullmatch=True)
image_refs = st.builds(
    lambda registry, path, tag: f"{registry}{'/'.join(path)}{tag}",
    st.sampled_from(["", "127.0.0.1:5000/", "mirror.example/", "localhost:5000/"]),
    st.lists(segment, min_size=1, max_size=3),
    st.sampled_from(["", ":latest", ":2014", ":v1.0-rc_1"]),
)
image_maps = st.one_of(
    st.builds(lambda a, b: f"{a}={b}", image_refs, image_refs),
    st.text(max_size=40),
    st.builds(lambda a, b: f"{a}={b}", st.text(max_size=15), st.text(max_size=15)),
)


@settings(SETTINGS, max_examples=60)
@given(maps=st.lists(image_maps, min_size=1, max_size=3))
def test_image_map_flag(maps: list[str]):
    """A well-formed FROM=TO gets past validation (the deploy then stops at the
    missing daemon: 1); anything else is one line naming --image-map (2)."""
    argv = ["deploy", "--dry-run", "--docker-host", NOWHERE]
    for item in maps:
        argv.append(f"--image-map={item}")  # "=": a value may start with "-"
    code, out, err = run_cli(argv)
    assert_well_behaved(code, out, err)
    assert code in (1, 2), (code, err)
    if code == 2:
        assert "--image-map" in err, err
    else:
        assert "docker-daemon" in out, out


@settings(SETTINGS, max_examples=30)
@given(pairs=st.lists(st.tuples(image_refs, image_refs), min_size=1, max_size=3))
def test_well_formed_image_maps_are_accepted(pairs: list[tuple[str, str]]):
    argv = ["deploy", "--dry-run", "--docker-host", NOWHERE]
    argv += [f"--image-map={a}={b}" for a, b in pairs]
    code, _, err = run_cli(argv)
    assert code == 1 and err == "", (code, err)  # blocked by the missing daemon only


# --- stack files (doctor/stacks/*.toml, through the loader) -------------------------

STACK_DIR = Path(__file__).resolve().parent.parent / "doctor" / "stacks"
STACKS = {
    path.stem: tomllib.loads(path.read_text()) for path in STACK_DIR.glob("*.toml")
}
stack_values = st.recursive(
    st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(),
        st.booleans(),
        st.text(max_size=12),
        st.sampled_from(["redis", "db", "shipyard", "http", "tcp", "no", "/x:/y"]),
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(
            st.sampled_from(["name", "port", "container", "service", "kind", "x"]),
            kids,
            max_size=3,
        ),
    ),
    max_leaves=6,
)


def mutate(node: Any, data: st.DataObject) -> None:
    """Walk down a random path of the stack and replace, add or delete there."""
    while True:
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(0, len(node) - 1))
        else:
            return
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del node[key]
        elif action == "add" and isinstance(node, dict):
            node[data.draw(st.text(max_size=8))] = data.draw(stack_values)
        else:
            node[key] = data.draw(stack_values)
        return


def stack_text(doc: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


def assert_stack_loads_or_says_why(text: str) -> None:
    origin = "stack file stacks/test.toml"
    try:
        stack = parse_stack(text, origin)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{origin}: ") and "\n" not in message, message
        assert exit_code(exc) == 2
        return
    # Accepted: what deploy, status and undeploy then ask of it must work too.
    stack.deploy_order()
    stack.host_ports({})
    assert stack.container_names


def test_the_real_stacks_round_trip_through_the_generator():
    # The generator's TOML is faithful: unmutated, every stack loads.
    for name, doc in STACKS.items():
        assert parse_stack(stack_text(doc), name).name == name


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_mutated_stack_files(data: st.DataObject):
    doc = copy.deepcopy(STACKS[data.draw(st.sampled_from(sorted(STACKS)))])
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(doc, data)
    assert_stack_loads_or_says_why(stack_text(doc))


@settings(SETTINGS, max_examples=60)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(repr)))
def test_arbitrary_stack_text(text: str):
    assert_stack_loads_or_says_why(text)
