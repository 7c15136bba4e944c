"""`deploy`, `status` and `undeploy` on real infrastructure: a dockerd in its own
network namespace and stand-in images built locally under the stacks' real names
(tests/standins.py). The doctor runs inside the namespace, as a user would on the
host; HTTP and redis are asked from inside the namespace too."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import infra_setup
from doctor_cli import DoctorRun, run_doctor
from infra import DockerHost, Netns
from standins import V1_IMAGES, V2_IMAGES, V3_IMAGES, build_stack_images

LABEL = "org.shipyard-doctor.stack"
PASSWORD = "Zq7-very-secret-admin"


@pytest.fixture(scope="session")
def stack_images(docker_host: DockerHost) -> dict[str, str]:
    """Every stand-in, built once per session before any test's snapshot."""
    with infra_setup():
        infra_tools()
        return build_stack_images(
            docker_host.client,
            tuple(
                dict.fromkeys(
                    [*V1_IMAGES, *V2_IMAGES, *V3_IMAGES, "shipyard/agent:latest"]
                )
            ),
        )


def infra_tools() -> None:
    import infra

    infra.require_tools("redis-server", "busybox", "nsenter")


@pytest.fixture
def host(stack_images: dict[str, str], clean_docker_host: DockerHost) -> DockerHost:
    return clean_docker_host


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The doctor's config: state_dir in tmp, the machine's daemon.json kept out."""
    (tmp_path / "system-root").mkdir()
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"data-root": str(tmp_path / "system-root")}))
    path = tmp_path / "config.toml"
    path.write_text(
        f"[docker]\ndaemon_json = '{daemon_json}'\n"
        f"[stack]\nstate_dir = '{tmp_path / 'state'}'\n"
    )
    return path


def doctor(
    host: DockerHost, config: Path, *args: str, timeout: float = 180
) -> DoctorRun:
    return run_doctor(
        *args,
        "--docker-host",
        host.dockerd.url,
        netns=host.netns,
        config=config,
        timeout=timeout,
    )


def containers(host: DockerHost) -> dict[str, str]:
    """name -> id of every container (all states)."""
    return {c.name: c.id for c in host.client.containers.list(all=True)}


def in_netns(netns: Netns, code: str) -> str:
    done = subprocess.run(
        netns.nsenter_argv([sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def http_status(netns: Netns, port: int) -> str:
    return in_netns(
        netns,
        "import http.client as h; c = h.HTTPConnection('127.0.0.1', "
        f"{port}, timeout=5); c.request('GET', '/'); print(c.getresponse().status)",
    )


def redis_ping(netns: Netns, port: int = 6379) -> str:
    return in_netns(
        netns,
        "import socket; s = socket.create_connection(('127.0.0.1', "
        f"{port}), 5); s.sendall(b'PING\\r\\n'); print(s.recv(64).decode().strip())",
    )


# --- v1 and v3, whole ---------------------------------------------------------


def test_v1_deploys_answers_and_a_second_run_changes_nothing(host, config):
    first = doctor(host, config, "deploy", "--yes", "--admin-password", PASSWORD)
    assert first.code == 0, first.stdout + first.stderr
    assert "Shipyard Stack Deployed" in first.stdout
    assert "login as admin with the password you gave at http://" in first.stdout
    names = containers(host)
    assert set(names) == {
        "shipyard_redis",
        "shipyard_router",
        "shipyard_lb",
        "shipyard_db",
        "shipyard",
    }
    assert http_status(host.netns, 8000) == "200"
    assert http_status(host.netns, 80) == "200"
    assert redis_ping(host.netns) == "+PONG"
    ui = host.client.containers.get("shipyard")
    assert ui.labels[LABEL] == "v1"
    assert ui.labels["org.shipyard-doctor.service"] == "shipyard"
    env = dict(e.split("=", 1) for e in ui.attrs["Config"]["Env"])
    # Legacy link variables, by name on the stack's network, no bridge address.
    assert env["DB_PORT_5432_TCP_ADDR"] == "db"
    assert env["REDIS_PORT_6379_TCP_ADDR"] == "redis"
    assert (
        env["DB_ENV_DB_PASS"]
        == dict(
            e.split("=", 1)
            for e in host.client.containers.get("shipyard_db").attrs["Config"]["Env"]
        )["DB_PASS"]
    )
    assert (
        "run.sh app master-worker: db at db:5432, redis at redis" in ui.logs().decode()
    )

    second = doctor(host, config, "deploy", "--yes", "--admin-password", PASSWORD)
    assert second.code == 0, second.stdout + second.stderr
    assert "already deployed, nothing to do" in second.stdout
    assert "warning:" not in second.stdout  # the same password: nothing to say
    assert containers(host) == names

    status = doctor(host, config, "status", "--json")
    assert status.code == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["state"] == "deployed"
    assert {s["container"]: s["ready"] for s in doc["services"] if s["id"]} == {
        n: True for n in names
    }
    for run in (first, second, status):
        assert PASSWORD not in run.stdout + run.stderr
        assert env["DB_ENV_DB_PASS"] not in run.stdout + run.stderr


KEPT = (
    "warning: shipyard keeps running with the admin password it was created with, "
    "not this one (it is only set when the container is created): to change it, "
    "`shipyard-doctor undeploy` then `shipyard-doctor deploy --admin-password "
    "PASSWORD` (the database volume is kept)"
)


def admin_pass(host: DockerHost) -> str:
    ui = host.client.containers.get("shipyard")
    return dict(e.split("=", 1) for e in ui.attrs["Config"]["Env"])["ADMIN_PASS"]


def test_another_admin_password_on_a_running_stack_is_said_never_dropped(host, config):
    """The UI's password is set when its container is created: a deploy that
    keeps that container says so in one line and how to change it; the route it
    names does."""
    assert (
        doctor(host, config, "deploy", "--yes", "--admin-password", PASSWORD).code == 0
    )
    names = containers(host)
    other = "Other-admin-pass-42"
    again = doctor(host, config, "deploy", "--yes", "--admin-password", other)
    assert again.code == 0, again.stdout + again.stderr
    assert "already deployed, nothing to do" in again.stdout
    assert [line for line in again.stdout.splitlines() if "warning" in line] == [KEPT]
    assert containers(host) == names and admin_pass(host) == PASSWORD

    # A repair that keeps the UI says it too, and not "the password you gave".
    host.client.containers.get("shipyard_lb").remove(force=True)
    repair = doctor(host, config, "deploy", "--yes", "--admin-password", other)
    assert repair.code == 0, repair.stdout + repair.stderr
    assert "Shipyard v1: repair a partial deployment" in repair.stdout
    assert KEPT in repair.stdout.splitlines()
    assert (
        "login as admin with the password shipyard already had (kept) at http://"
        in repair.stdout
    )
    assert containers(host)["shipyard"] == names["shipyard"]
    assert admin_pass(host) == PASSWORD

    # The route it names: undeploy (the database volume stays), deploy.
    assert doctor(host, config, "undeploy", "--yes").code == 0
    fresh = doctor(host, config, "deploy", "--yes", "--admin-password", other)
    assert fresh.code == 0, fresh.stdout + fresh.stderr
    assert "login as admin with the password you gave at http://" in fresh.stdout
    assert "warning:" not in fresh.stdout and admin_pass(host) == other
    for run in (again, repair, fresh):
        assert PASSWORD not in run.stdout + run.stderr
        assert other not in run.stdout + run.stderr


@pytest.mark.parametrize(("stack", "count"), [("v3", 7), ("v2", 3)])
def test_v3_and_v2_deploy_with_the_ui_on_8080(host, config, stack, count):
    run = doctor(host, config, "deploy", "--stack", stack, "--yes")
    assert run.code == 0, run.stdout + run.stderr
    assert "Shipyard's 2014 default password" in run.stdout
    assert "warning: the admin password is Shipyard's 2014 default" in run.stdout
    assert http_status(host.netns, 8080) == "200"
    ids = containers(host)
    assert len(ids) == count
    again = doctor(host, config, "deploy", "--stack", stack, "--yes")
    assert "already deployed, nothing to do" in again.stdout, again.stdout
    assert containers(host) == ids
    status = doctor(host, config, "status", "--stack", stack)
    assert status.code == 0, status.stdout
    assert f"Shipyard {stack}: deployed" in status.stdout


# --- refusing, failing, rolling back --------------------------------------------------

V1_NAMES = {
    "shipyard_redis",
    "shipyard_router",
    "shipyard_lb",
    "shipyard_db",
    "shipyard",
}


def bystander(host: DockerHost) -> str:
    """An unrelated container that must outlive every deploy and undeploy."""
    ctr = host.client.containers.run(
        "shipyard-doctor/standin:latest",
        ["sleep", "3600"],
        name="bystander",
        detach=True,
    )
    return str(ctr.id)


def stack_networks(host: DockerHost) -> list[str]:
    return [
        n.name for n in host.client.networks.list() if n.name.startswith("shipyard")
    ]


def stack_volumes(host: DockerHost) -> list[str]:
    return [v.name for v in host.client.volumes.list()]


def test_a_port_conflict_refuses_before_anything_is_created(host, config, listeners):
    listeners.tcp(host.netns, "0.0.0.0", 8000)
    before = containers(host)
    run = doctor(host, config, "deploy", "--yes")
    assert run.code == 1, run.stdout + run.stderr
    assert "blockers (the deploy cannot start):" in run.stdout
    assert "x ports: port 8000 already in use" in run.stdout
    assert "[fix: ports]" in run.stdout
    assert containers(host) == before
    assert stack_networks(host) == []
    assert "Shipyard v1: deploy" not in run.stdout  # no plan: nothing will be done


def test_force_deploys_anyway_and_says_what_it_overrode(host, config, listeners):
    # A listener on 127.0.0.1 only: the ports check sees the conflict, Docker can
    # still publish 0.0.0.0:6379 beside it.
    listeners.tcp(host.netns, "127.0.0.1", 6379)
    run = doctor(host, config, "deploy", "--yes", "--force", "--dry-run")
    assert run.code == 0, run.stdout + run.stderr
    assert "blockers (overridden by --force):" in run.stdout
    assert "x ports: port 6379 already in use" in run.stdout
    assert "Shipyard v1: deploy" in run.stdout
    assert containers(host) == {}


def test_a_missing_image_for_the_fourth_service_changes_nothing(host, config):
    # The fourth service's image is not here (and no registry is reachable). It is
    # mapped away rather than untagged: untagging would delete the session's
    # stand-in, which the test host's restore cannot rebuild.
    other = bystander(host)
    missing = "--image-map", "shipyard/db=shipyard/db-gone:latest"
    run = doctor(host, config, "deploy", "--yes", *missing, timeout=300)
    assert run.code == 1, run.stdout + run.stderr
    assert "pull:     shipyard/db-gone:latest" in run.stdout
    assert "deploy failed: cannot pull shipyard/db-gone:latest: " in run.stdout
    assert containers(host) == {"bystander": other}
    assert host.client.containers.get("bystander").status == "running"
    assert stack_networks(host) == []
    assert stack_volumes(host) == []


def test_a_service_that_dies_is_named_with_its_logs_and_rolled_back(host, config):
    from standins import build_web_image

    build_web_image(
        host.client,
        "broken/db:latest",
        {
            "start": 'echo "postgres: password is $DB_PASS"\n'
            'echo "FATAL: data directory /var/lib/postgresql has wrong ownership"\n'
            "exit 3"
        },
        ('ENTRYPOINT ["/start"]',),
    )
    other = bystander(host)
    run = doctor(
        host, config, "deploy", "--yes", "--image-map", "shipyard/db=broken/db:latest"
    )
    assert run.code == 1, run.stdout + run.stderr
    assert (
        "deploy failed: shipyard_db (broken/db:latest) exited and was restarted by "
        "its restart policy before it was ready" in run.stdout
    )
    assert (
        "| FATAL: data directory /var/lib/postgresql has wrong ownership" in run.stdout
    )
    assert "| postgres: password is ********" in run.stdout
    assert (
        "rolled back: removed shipyard_db, shipyard_lb, shipyard_router, "
        "shipyard_redis, volume shipyard_db_data, network" in run.stdout
    )
    assert containers(host) == {"bystander": other}
    assert stack_networks(host) == []
    assert stack_volumes(host) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_readiness_waits_rolls_back(host, config, sig):
    from standins import build_web_image

    build_web_image(
        host.client,
        "slow/shipyard:latest",
        {"app/.docker/run.sh": "echo migrating; exec sleep 3600"},
        (),
    )
    other = bystander(host)
    argv = host.netns.nsenter_argv(
        [
            sys.executable,
            "-m",
            "shipyard_doctor",
            "deploy",
            "--yes",
            "--image-map",
            "shipyard/shipyard=slow/shipyard:latest",
            "--docker-host",
            host.dockerd.url,
            "--config",
            str(config),
        ]
    )
    env = {"PATH": os.environ["PATH"], "NO_COLOR": "1", "LANG": "C.UTF-8"}
    seen: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(line)
                if "waiting for HTTP GET / on 8000" in line:
                    break
            assert set(containers(host)) >= V1_NAMES, "".join(seen)
            time.sleep(0.5)
            proc.send_signal(sig)
            rest = proc.stdout.read()
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 130, "".join(seen) + rest
    assert "deploy interrupted: interrupted while starting shipyard" in rest
    assert containers(host) == {"bystander": other}
    assert stack_networks(host) == []


def to(host: DockerHost, config: Path) -> list[str]:
    return ["--docker-host", host.dockerd.url, "--config", str(config)]


@pytest.mark.parametrize(
    "cue",
    [
        "",  # a fixed delay: while it probes, plans and runs the preflight checks
        "preflight:",
        "created network",
        "created volume",
        "started shipyard_redis",
    ],
)
def test_ctrl_c_at_any_moment_of_a_deploy_leaves_nothing(host, config, cue):
    """A real SIGINT at several moments (on a line of output, or 0.6 s in): exit
    130, no traceback, nothing the run created left on the daemon, no temp file."""
    other = bystander(host)
    argv = host.netns.nsenter_argv(
        [sys.executable, "-m", "shipyard_doctor", "deploy", "--yes", *to(host, config)]
    )
    env = {"PATH": os.environ["PATH"], "NO_COLOR": "1", "LANG": "C.UTF-8"}
    seen: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            if cue:
                for line in proc.stdout:
                    seen.append(line)
                    if cue in line:
                        break
                assert cue in "".join(seen), "".join(seen)
            else:
                time.sleep(0.6)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
    shown = "".join(seen) + out
    assert proc.returncode in (130, -signal.SIGINT), shown + err
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    assert containers(host) == {"bystander": other}, shown
    assert stack_networks(host) == [], shown
    assert stack_volumes(host) == [], shown
    assert list((config.parent / "state").glob("*.tmp")) == []


class _HoldingProxy:
    """A unix-socket relay to the test dockerd that holds every container-create
    request for ``hold`` seconds before passing it on, and says when one came. The
    request reaches dockerd even if the client has hung up meanwhile, as it does
    when a client is interrupted between sending a request and reading its answer."""

    def __init__(self, path: Path, target: str, hold: float):
        import socket
        import threading

        self.path, self.target, self.hold = path, target, hold
        self.arrived = threading.Event()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            daemon.connect(self.target)
            for relay in (self._requests, self._answers):
                threading.Thread(
                    target=relay, args=(client, daemon), daemon=True
                ).start()

    def _requests(self, client, daemon) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if b"/containers/create" in data:
                    self.arrived.set()
                    time.sleep(self.hold)
                daemon.sendall(data)
        time.sleep(self.hold)  # the client is gone: let dockerd finish what it got
        daemon.close()

    def _answers(self, client, daemon) -> None:
        with contextlib.suppress(OSError):
            while data := daemon.recv(65536):
                client.sendall(data)
        client.close()

    def close(self) -> None:
        self.server.close()


def test_ctrl_c_while_docker_creates_a_container_leaves_nothing(host, config, tmp_path):
    # Interrupted between its create request and Docker's answer, a deploy did not
    # know the new container's id, and dockerd made it after the rollback had looked
    # for strays: it was left behind (seen in CI). The signal now waits for the
    # answer, so the rollback removes the container too.
    other = bystander(host)
    proxy = _HoldingProxy(
        tmp_path / "docker.sock", host.dockerd.url.removeprefix("unix://"), hold=1.5
    )
    argv = ["deploy", "--yes", "--docker-host", f"unix://{proxy.path}"]
    argv = [sys.executable, "-m", "shipyard_doctor", *argv, "--config", str(config)]
    env = {"PATH": os.environ["PATH"], "NO_COLOR": "1", "LANG": "C.UTF-8"}
    try:
        with subprocess.Popen(
            host.netns.nsenter_argv(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as proc:
            try:
                assert proxy.arrived.wait(120), "no container was ever created"
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=90)
            finally:
                if proc.poll() is None:
                    proc.kill()
    finally:
        proxy.close()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err, err
    time.sleep(2 * proxy.hold)  # whatever the proxy held has reached dockerd now
    assert containers(host) == {"bystander": other}, out
    assert stack_networks(host) == [], out
    assert stack_volumes(host) == [], out


# --- asking, repairing, undeploying ---------------------------------------------------


def test_no_terminal_and_no_yes_prints_the_plan_and_does_nothing(host, config):
    run = doctor(host, config, "deploy")
    assert run.code == 3, run.stdout + run.stderr
    assert "Shipyard v1: deploy" in run.stdout
    assert "nothing done: no terminal to confirm on; run again with --yes" in run.stdout
    assert containers(host) == {}


def test_a_half_deployed_legacy_stack_is_repaired_after_confirmation(host, config):
    # What the old run.sh left: redis running (no labels), the router exited.
    redis = host.client.containers.run(
        "shipyard/redis", name="shipyard_redis", detach=True, ports={"6379/tcp": 6379}
    )
    router = host.client.containers.run(
        "shipyard/router", ["true"], name="shipyard_router", detach=True
    )
    router.wait(timeout=30)
    plan = doctor(host, config, "deploy")
    assert plan.code == 3, plan.stdout + plan.stderr
    assert "Shipyard v1: repair a partial deployment" in plan.stdout
    assert f"remove:   shipyard_redis (legacy, running, {redis.id[:12]})" in plan.stdout
    assert (
        f"remove:   shipyard_router (legacy, exited, {router.id[:12]})" in plan.stdout
    )
    assert containers(host)["shipyard_redis"] == redis.id
    run = doctor(host, config, "deploy", "--yes")
    assert run.code == 0, run.stdout + run.stderr
    assert set(containers(host)) == V1_NAMES
    assert all(
        c.labels.get(LABEL) == "v1" for c in host.client.containers.list(all=True)
    )
    assert redis_ping(host.netns) == "+PONG"


def test_a_whole_legacy_deployment_is_recognised_and_left_alone(host, config):
    # The story's `shipyard/deploy setup`: five containers, no labels, linked.
    ports = {
        "shipyard_redis": {"6379/tcp": 6379},
        "shipyard_router": {"80/tcp": None},
        "shipyard_lb": {"80/tcp": 80},
        "shipyard_db": {"5432/tcp": None},
        "shipyard": {"8000/tcp": 8000},
    }
    images = {
        "shipyard": "shipyard/shipyard",
        **{n: n.replace("_", "/") for n in ports if n != "shipyard"},
    }
    for name, published in ports.items():
        kw = {"entrypoint": ["/app/.docker/run.sh"]} if name == "shipyard" else {}
        host.client.containers.run(
            images[name], name=name, detach=True, ports=published, **kw
        )
    ids = containers(host)
    run = doctor(host, config, "deploy", "--yes")
    assert run.code == 0, run.stdout + run.stderr
    assert "already deployed (by another tool, no labels), nothing to do" in run.stdout
    # run.sh without ADMIN_PASS: the default, which this deploy would set too.
    assert "keeps running with the admin password" not in run.stdout
    assert containers(host) == ids
    status = doctor(host, config, "status")
    assert "Shipyard v1: deployed" in status.stdout
    assert status.stdout.count("(legacy, no labels)") == 5
    other = bystander(host)
    gone = doctor(host, config, "undeploy", "--yes")
    assert gone.code == 0, gone.stdout + gone.stderr
    assert containers(host) == {"bystander": other}


def test_undeploy_removes_only_the_stack(host, config):
    assert doctor(host, config, "deploy", "--yes").code == 0
    other = bystander(host)
    asked = doctor(host, config, "undeploy")
    assert asked.code == 3, asked.stdout
    assert "container shipyard_db (" in asked.stdout
    assert "volumes shipyard_db_data: kept (--volumes removes them)" in asked.stdout
    assert set(containers(host)) >= V1_NAMES
    run = doctor(host, config, "undeploy", "--yes")
    assert run.code == 0, run.stdout + run.stderr
    assert containers(host) == {"bystander": other}
    assert host.client.containers.get("bystander").status == "running"
    assert stack_networks(host) == []
    assert stack_volumes(host) == ["shipyard_db_data"]
    status = doctor(host, config, "status")
    assert status.code == 1
    assert "Shipyard v1: not deployed" in status.stdout
    # Deployed again over the kept volume, with the kept database password.
    secrets_file = config.parent / "state" / "v1.secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    kept = json.loads(secrets_file.read_text())["db_password"]
    assert doctor(host, config, "deploy", "--yes").code == 0
    db_env = host.client.containers.get("shipyard_db").attrs["Config"]["Env"]
    assert f"DB_PASS={kept}" in db_env
    gone = doctor(host, config, "undeploy", "--yes", "--volumes")
    assert gone.code == 0
    assert stack_volumes(host) == []
    assert containers(host) == {"bystander": other}


def test_the_agent_runs_as_a_container_reaching_the_ui_by_name(host, config):
    # The 2014 agent speaks API 1.9, which this Docker refuses: with the agent
    # deployed, docker-compat blocks (without it, it does not concern the deploy).
    refused = doctor(host, config, "deploy", "--yes", "--with-agent")
    assert refused.code == 1, refused.stdout + refused.stderr
    assert "x docker-compat: Docker" in refused.stdout
    run = doctor(host, config, "deploy", "--yes", "--with-agent", "--force")
    assert run.code == 0, run.stdout + run.stderr
    assert "blockers (overridden by --force):" in run.stdout
    agent = host.client.containers.get("shipyard_agent")
    assert agent.status == "running"
    assert "agent -url http://shipyard:8000 -docker /docker.sock -register" in (
        agent.logs().decode()
    )
    mounts = {m["Destination"]: m["Source"] for m in agent.attrs["Mounts"]}
    assert mounts["/docker.sock"] == str(host.dockerd.socket_path)


def test_an_unreachable_docker_is_shown_by_the_preflight(netns, config):
    run = run_doctor(
        "deploy",
        "--yes",
        "--docker-host",
        "unix:///nonexistent/docker.sock",
        netns=netns,
        config=config,
    )
    assert run.code == 1, run.stdout + run.stderr
    assert "x docker-daemon: " in run.stdout
    assert "Shipyard v1: deploy" not in run.stdout


def converse(argv: list[str], answer: str, timeout: float = 180) -> tuple[int, str]:
    """Run argv on a pty (stdin too), answer its [y/N] question, return its output."""
    import pty
    import select

    primary, secondary = pty.openpty()
    env = {"PATH": os.environ["PATH"], "TERM": "dumb", "NO_COLOR": "1"}
    with subprocess.Popen(
        argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env
    ) as proc:
        os.close(secondary)
        output = b""
        answered = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(primary, 65536)
            except OSError:
                break
            if not data:
                break
            output += data
            if not answered and b"[y/N]" in output:
                os.write(primary, answer.encode() + b"\n")
                answered = True
        code = proc.wait(timeout=30)
    os.close(primary)
    return code, output.decode("utf-8", "replace")


def test_on_a_terminal_it_asks_and_no_means_nothing(host, config):
    argv = host.netns.nsenter_argv(
        [
            sys.executable,
            "-m",
            "shipyard_doctor",
            "deploy",
            "--docker-host",
            host.dockerd.url,
            "--config",
            str(config),
        ]
    )
    code, output = converse(argv, "n")
    assert code == 3, output
    assert "deploy Shipyard v1? [y/N]" in output
    assert "nothing done" in output
    assert containers(host) == {}
    code, output = converse(argv, "y")
    assert code == 0, output
    assert "Shipyard Stack Deployed" in output
    assert set(containers(host)) == V1_NAMES
