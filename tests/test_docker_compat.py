"""docker-compat: the version matrix of domain.md section 10, the daemon's real
/version and error bodies (recorded on this machine's dockerd 20.10.24), and the
check against a real namespace dockerd, which refuses the v1 agent's API 1.9."""

from __future__ import annotations

import pytest
from doctor_cli import run_doctor
from shipyard_doctor.host.compat import (
    Schema1Pull,
    daemon_message,
    default_min_api,
    lowest_min_api,
    parse_version,
    schema1_pull,
)

# GET /version of Debian 12's docker.io 20.10.24, recorded in a test-bed namespace.
RECORDED_VERSION = {
    "Version": "20.10.24+dfsg1",
    "ApiVersion": "1.41",
    "MinAPIVersion": "1.12",
    "GitCommit": "5d6db84",
    "GoVersion": "go1.19.8",
    "Os": "linux",
    "Arch": "amd64",
}
# GET /v1.9/version on that daemon: HTTP 400, Content-Type text/plain.
RECORDED_TOO_OLD = (
    "client version 1.9 is too old. Minimum supported API version is 1.12, please "
    "upgrade your client to a newer version\n"
)
# GET /v1.44/version on that daemon: HTTP 400, Content-Type application/json.
RECORDED_TOO_NEW = (
    '{"message":"client version 1.44 is too new. Maximum supported API version is '
    '1.41"}\n'
)


@pytest.mark.parametrize(
    ("engine", "default", "lowest", "pull"),
    [
        # moby tags named in domain.md section 10
        ("20.10.24+dfsg1", "1.12", "1.12", Schema1Pull.SUPPORTED),
        ("24.0.0", "1.12", "1.12", Schema1Pull.SUPPORTED),
        ("25.0.0", "1.24", "1.24", Schema1Pull.SUPPORTED),
        ("26.0.0", "1.24", "1.24", Schema1Pull.DISABLED),
        ("28.1.1", "1.24", "1.24", Schema1Pull.DISABLED),
        ("28.2.0", "1.24", "1.24", Schema1Pull.REMOVED),
        ("28.5.2", "1.24", "1.24", Schema1Pull.REMOVED),
        ("29.0.0", "1.44", "1.24", Schema1Pull.REMOVED),
        ("29.7.2", "1.44", "1.24", Schema1Pull.REMOVED),
    ],
)
def test_version_matrix(engine, default, lowest, pull):
    assert default_min_api(engine) == default
    assert lowest_min_api(engine) == lowest
    assert schema1_pull(engine) is pull


def test_versions_compare_as_numbers_not_strings():
    assert parse_version("1.9") < parse_version("1.12") < parse_version("v1.15")
    assert parse_version("20.10.24+dfsg1") == (20, 10, 24)
    assert parse_version("1.6.20~ds1") == (1, 6, 20)
    assert parse_version("28.2.0-rc.1") >= (28, 2)
    assert parse_version("?") == ()


def test_matrix_agrees_with_a_real_daemon(clean_docker_host):
    # The running test daemon (started without DOCKER_MIN_API_VERSION) states its
    # own floor: the matrix must predict it from the version string alone.
    live = clean_docker_host.client.version()
    assert default_min_api(live["Version"]) == live["MinAPIVersion"], live
    lowest = parse_version(lowest_min_api(live["Version"]))
    assert lowest <= parse_version(live["MinAPIVersion"]), live
    # And the recorded daemon of the module docstring, an older engine line.
    recorded = RECORDED_VERSION
    assert default_min_api(recorded["Version"]) == recorded["MinAPIVersion"]


def test_daemon_messages_in_both_recorded_formats():
    assert daemon_message(RECORDED_TOO_OLD) == RECORDED_TOO_OLD.strip()
    assert daemon_message(RECORDED_TOO_NEW) == (
        "client version 1.44 is too new. Maximum supported API version is 1.41"
    )


def test_v1_agent_is_refused_with_the_daemons_own_words(clean_docker_host):
    host = clean_docker_host
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-compat",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
    )
    check = run.check("docker-compat")
    version = host.client.version()
    engine, oldest = version["Version"], version["MinAPIVersion"]
    assert check["status"] == "failure", check
    assert run.code == 1
    assert check["summary"] == (
        f"Docker {engine} refuses shipyard-agent's API 1.9 (oldest accepted: {oldest})"
    )
    refusal = (
        f"client version 1.9 is too old. Minimum supported API version is {oldest}, "
        "please upgrade your client to a newer version"
    )
    assert (
        f"shipyard-agent sends API 1.9: GET /v1.9/version -> HTTP 400: {refusal}"
        in check["details"]
    )
    (client,) = check["data"]["clients"]
    assert client["status"] == 400 and client["message"] == refusal
    assert check["hints"][0] == (
        f"make shipyard-agent send an accepted version: shipyard-agent -api-version "
        f"v{oldest} (agent container: -e API_VERSION=v{oldest})"
    )
    # 20.10 still pulls the 2014 schema 1 images: said, not a problem.
    assert check["data"]["schema1_pull"] == "supported"
    assert "shipyard/agent" in check["data"]["schema1_images"]


def test_v3_clients_are_accepted(clean_docker_host):
    host = clean_docker_host
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-compat",
        "--stack",
        "v3",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
    )
    check = run.check("docker-compat")
    engine = host.client.version()["Version"]
    assert check["status"] == "ok", check
    assert check["summary"] == (
        f"Docker {engine} accepts Shipyard v3's clients "
        "(classic Swarm manager (swarm:latest): API 1.15)"
    )
    assert (
        "classic Swarm manager (swarm:latest) sends API 1.15: GET /v1.15/version "
        "-> 200 OK" in check["details"]
    )


def test_stack_without_recorded_clients_is_skipped_with_the_reason(
    clean_docker_host,
):
    host = clean_docker_host
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-compat",
        "--stack",
        "v2",
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
    )
    check = run.check("docker-compat")
    assert check["status"] == "skipped"
    assert check["summary"] == (
        "Shipyard v2 records no client API version or schema 1 image to check"
    )
