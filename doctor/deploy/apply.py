"""Apply a deploy plan as one transaction.

Pulls come first (nothing is created while layers download), then the network, the
volumes and the containers in dependency order, each one awaited until its
readiness probe answers. Any failure, and SIGINT or SIGTERM, removes exactly what
this run created -- containers, then volumes, then the network -- and nothing else;
the signals are held off while that happens.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from shipyard_doctor.deploy import labels, probes
from shipyard_doctor.deploy.daemon import Daemon
from shipyard_doctor.deploy.errors import DeployError
from shipyard_doctor.deploy.events import Reporter
from shipyard_doctor.deploy.plan import ContainerSpec, DeployPlan
from shipyard_doctor.deploy.secrets import redact, save_secrets
from shipyard_doctor.errors import sigterm_interrupts
from shipyard_doctor.records import record


@record
class Failure:
    """What stopped a deploy: one line, and the failing container with its last logs."""

    what: str  # one line: what failed, naming the image, container or port
    container: str = ""
    logs: tuple[str, ...] = ()  # the failing container's last log lines


@record
class Outcome:
    """How applying a deploy plan ended: the containers created, or the failure and
    what the rollback removed."""

    ok: bool
    interrupted: bool = False
    failure: Failure | None = None
    ids: tuple[tuple[str, str], ...] = ()  # container name -> id created
    rolled_back: tuple[str, ...] = ()  # what the rollback removed
    seconds: float = 0.0


class _NotReady(Exception):
    def __init__(self, what: str, container: str):
        super().__init__(what)
        self.container = container


def apply_plan(plan: DeployPlan, daemon: Daemon, reporter: Reporter) -> Outcome:
    started = time.monotonic()
    created: list[tuple[str, str]] = []
    made_volumes: list[str] = []
    made_network: list[str] = []
    secret_values = plan.secrets.values()

    def fail(failure: Failure, interrupted: bool = False) -> Outcome:
        removed = _rollback(daemon, plan, created, made_volumes, made_network, reporter)
        return Outcome(
            ok=False,
            interrupted=interrupted,
            failure=failure,
            rolled_back=tuple(removed),
            seconds=time.monotonic() - started,
        )

    with sigterm_interrupts():  # SIGTERM behaves like Ctrl-C: rolled back
        try:
            for image in plan.pulls:
                reporter.pull_started(image)
                daemon.pull(image, functools.partial(reporter.pull_event, image))
                reporter.pull_finished(image)
            save_secrets(plan.secrets)
            stack_labels = labels.labels(plan.stack.name, plan.deploy_id)
            if not plan.network_exists:
                with _signals_deferred():
                    net = daemon.api.create_network(
                        plan.network, driver="bridge", labels=stack_labels
                    )
                    made_network.append(net["Id"])
                reporter.step(f"created network {plan.network}")
            for volume in plan.new_volumes:
                with _signals_deferred():
                    daemon.api.create_volume(volume, labels=stack_labels)
                    made_volumes.append(volume)
                reporter.step(f"created volume {volume}")
            for found in plan.replace:
                daemon.remove_container(found.id, volumes=False)
                reporter.step(f"removed leftover {found.name} ({found.state})")
            for spec in plan.create:
                with _signals_deferred():
                    cid = _create(daemon, plan, spec)
                    created.append((spec.name, cid))
                daemon.api.start(cid)
                reporter.step(
                    f"started {spec.name} ({spec.image}); waiting for "
                    f"{probes.describe(spec.probe)}"
                )
                waited = _wait_ready(daemon, plan, spec, cid)
                reporter.step(f"{spec.name} ready after {waited:.1f} s")
        except KeyboardInterrupt:
            where = f" while starting {created[-1][0]}" if created else ""
            return fail(Failure(f"interrupted{where}"), interrupted=True)
        except _NotReady as exc:
            logs = tuple(
                redact(line, secret_values) for line in daemon.logs_tail(exc.container)
            )
            return fail(Failure(redact(str(exc), secret_values), exc.container, logs))
        except DeployError as exc:
            return fail(Failure(str(exc)))
        except Exception as exc:  # the Docker API refused: name what it refused
            import docker

            if not isinstance(exc, docker.errors.APIError):
                raise
            what = created[-1][0] if created else "the deploy"
            reason = redact(str(exc.explanation or exc), secret_values)
            name = _current(plan, created)
            return fail(Failure(f"Docker refused {name}: {reason}", what))
    return Outcome(True, ids=tuple(created), seconds=time.monotonic() - started)


def _current(plan: DeployPlan, created: list[tuple[str, str]]) -> str:
    done = {name for name, _ in created}
    for spec in plan.create:
        if spec.name not in done:
            return f"{spec.name} ({spec.image})"
    return created[-1][0] if created else "the network or volumes"


def _create(daemon: Daemon, plan: DeployPlan, spec: ContainerSpec) -> str:
    api = daemon.api
    bindings: dict[str, Any] = {}
    for cport, proto, host in spec.ports:
        bindings[f"{cport}/{proto}"] = host
    restart = None if spec.restart == "no" else {"Name": spec.restart}
    host_config = api.create_host_config(
        port_bindings=bindings,
        binds=[
            f"{src}:{target}:{'ro' if ro else 'rw'}" for src, target, ro in spec.binds
        ],
        restart_policy=restart,
        network_mode=plan.network,
    )
    networking = api.create_networking_config(
        {plan.network: api.create_endpoint_config(aliases=list(spec.aliases))}
    )
    exposed = [(p, proto) for p, proto, _ in spec.ports]
    exposed += [(p, "tcp") for p in spec.expose if p not in {e for e, _ in exposed}]
    answer = api.create_container(
        spec.image,
        command=None if spec.command is None else list(spec.command),
        entrypoint=None if spec.entrypoint is None else list(spec.entrypoint),
        environment=dict(spec.env),
        name=spec.name,
        ports=exposed,
        labels=dict(spec.labels),
        tty=spec.tty,
        stdin_open=spec.tty,
        detach=True,
        host_config=host_config,
        networking_config=networking,
    )
    return str(answer["Id"])


def _wait_ready(
    daemon: Daemon, plan: DeployPlan, spec: ContainerSpec, cid: str
) -> float:
    probe = spec.probe
    started = time.monotonic()
    deadline = started + probe.timeout
    address, port = _probe_target(daemon, plan, spec, cid)
    while True:
        state = daemon.state(cid)
        if not state.get("Running") or state.get("Restarting") or state["RestartCount"]:
            how = (
                "exited and was restarted by its restart policy"
                if state["RestartCount"] or state.get("Restarting")
                else f"exited with code {state.get('ExitCode')}"
            )
            raise _NotReady(
                f"{spec.name} ({spec.image}) {how} before it was ready", cid
            )
        if probe.kind == "running" or not address:
            if time.monotonic() - started >= 1.0:
                return time.monotonic() - started
        elif probes.attempt(probe, address, port):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise _NotReady(
                f"{spec.name} ({spec.image}) not ready after {probe.timeout:.0f} s: "
                f"no answer to {probes.describe(probe)}",
                cid,
            )
        time.sleep(0.05)


def _probe_target(
    daemon: Daemon, plan: DeployPlan, spec: ContainerSpec, cid: str
) -> tuple[str, int]:
    """Where to probe: the container's address on the stack's network when the
    daemon is on this host, else the published host port on the daemon's host."""
    port = spec.probe.port
    if daemon.local:
        return daemon.address(cid, plan.network), port
    for cport, proto, host in spec.ports:
        if cport == port and proto == "tcp" and host:
            return daemon.endpoint.host, host
    return "", 0  # not reachable from here: "still running" is all that is known


def _rollback(
    daemon: Daemon,
    plan: DeployPlan,
    containers: list[tuple[str, str]],
    volumes: list[str],
    networks: list[str],
    reporter: Reporter,
) -> list[str]:
    removed: list[str] = []
    with _signals_held():
        with daemon.quiet():
            _add_strays(daemon, plan, containers, volumes, networks)
        for name, cid in reversed(containers):
            with daemon.quiet():
                daemon.remove_container(cid, volumes=True)
                removed.append(name)
        for volume in volumes:
            with daemon.quiet():
                daemon.api.remove_volume(volume)
                removed.append(f"volume {volume}")
        for net in networks:
            with daemon.quiet():
                daemon.api.remove_network(net)
                removed.append("network")
    if removed:
        reporter.step(f"rolled back: removed {', '.join(removed)}")
    return removed


def _add_strays(
    daemon: Daemon,
    plan: DeployPlan,
    containers: list[tuple[str, str]],
    volumes: list[str],
    networks: list[str],
) -> None:
    """Add what Docker created but whose answer a signal cut off (between the API
    call and its return): this run's names carrying this run's deploy-id label.
    A repair shares the deploy id of what it keeps, so names and keep decide."""
    kept = {found.id for found in plan.keep} | {cid for _, cid in containers}
    creating = {spec.name for spec in plan.create}
    for found in daemon.containers():
        ours = found.labels.get(labels.DEPLOY_ID) == plan.deploy_id
        if ours and found.name in creating and found.id not in kept:
            containers.insert(0, (found.name, found.id))  # removed last
    for volume in daemon.volumes_labelled(plan.stack.name):
        if volume in plan.new_volumes and volume not in volumes:
            volumes.append(volume)
    net = None if plan.network_exists else daemon.network(plan.network)
    if net is not None and net["Id"] not in networks:
        ours = (net.get("Labels") or {}).get(labels.DEPLOY_ID) == plan.deploy_id
        if ours:
            networks.append(net["Id"])


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C or SIGTERM while Docker creates something takes effect once its answer
    (the new object's id) is in and recorded. Cut off between the request and the
    answer, dockerd still creates the object, possibly after the rollback looked for
    strays: it would be left behind. The wait is bounded by the API's timeout."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def later(signum: int, frame: object) -> None:
        came.append(signum)

    old = {s: signal.signal(s, later) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if came:
        raise KeyboardInterrupt(f"signal {came[0]}")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """A second Ctrl-C must not cut a rollback short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
