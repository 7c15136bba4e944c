"""The stacks as data: every shipped stack loads and orders its services; malformed
stack data is one line naming the field."""

from __future__ import annotations

import pytest
from shipyard_doctor.errors import ConfigError
from shipyard_doctor.stacks import available_stacks, load_stack, parse_stack

GOOD = """
name = "t"
description = "test"
ui = { service = "web", container_port = 80 }
[[services]]
name = "web"
container = "t_web"
image = "t/web"
ports = [{ container = 80, host = 8080 }]
links = [{ service = "cache" }]
ready = { kind = "http", port = 80 }
[[services]]
name = "cache"
container = "t_cache"
image = "t/cache"
ports = []
ready = { kind = "redis", port = 6379 }
"""


@pytest.mark.parametrize("name", available_stacks())
def test_every_stack_loads_with_dependencies_first(name):
    stack = load_stack(name)
    seen: set[str] = set()
    for service in stack.deploy_order():
        assert set(service.depends_on) <= seen, service.name
        seen.add(service.name)
    assert stack.network


def test_v1_is_the_may_2014_run_sh_order():
    stack = load_stack("v1")
    order = [s.container for s in stack.deploy_order()]
    assert order[:5] == [
        "shipyard_redis",
        "shipyard_router",
        "shipyard_lb",
        "shipyard_db",
        "shipyard",
    ]
    ui = stack.service("shipyard")
    assert ui.entrypoint == ("/app/.docker/run.sh",)
    assert ui.command == ("app", "master-worker")
    assert [(lk.service, lk.alias) for lk in ui.links] == [
        ("db", "db"),
        ("redis", "redis"),
    ]


def test_links_order_services_before_their_users():
    stack = parse_stack(GOOD, "test")
    assert [s.name for s in stack.deploy_order()] == ["cache", "web"]
    assert stack.service("web").links[0].alias == "cache"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "http"', 'kind = "ping"'), "services.web.ready.kind must be one of"),
        (('service = "cache" }', 'service = "nope" }'), "depends on unknown 'nope'"),
        (("port = 6379", "port = 0"), "services.cache.ready.port: 0 is not a port"),
        (('image = "t/web"', "image = 3"), "services.web.image has the wrong type"),
        (('image = "t/cache"\n', ""), "services.cache.image is missing"),
        (
            ("ports = []", 'ports = []\nenv = { A = "${nope}" }'),
            "unknown placeholder ${nope}",
        ),
    ],
)
def test_bad_stack_data_is_one_line(change, message):
    with pytest.raises(ConfigError) as info:
        parse_stack(GOOD.replace(*change, 1), "stack file t.toml")
    text = str(info.value)
    assert text.startswith("stack file t.toml: ")
    assert message in text
    assert "\n" not in text


def test_a_dependency_cycle_is_refused():
    cyclic = GOOD.replace("ports = []", 'ports = []\nafter = ["web"]')
    with pytest.raises(ConfigError, match="dependency cycle web -> cache -> web"):
        parse_stack(cyclic, "t")
