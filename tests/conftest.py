"""pytest wiring for the real-infrastructure test bed (see infra.py).

Two policies live here:

* A missing prerequisite (:class:`infra.InfraMissing`) while an infra fixture
  is being set up SKIPS the test on a developer machine, with the message that
  says what to install, but FAILS it under ``CI=true``: CI must never turn green
  because the real tests quietly did not run.
* Every test that uses an infra fixture (directly or through another fixture)
  gets the ``infra`` marker, so ``pytest -m "not infra"`` runs the fast tests.

Everything a fixture creates is released in a ``finally`` block, so a failing
test, a ^C or a SIGTERM (turned into KeyboardInterrupt below) still tears it
down; what a SIGKILLed run left behind is reaped at the next session start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import infra
from infra import (
    DockerHost,
    HangingUnixServer,
    InfraMissing,
    Listeners,
    ManagedProcess,
    Netns,
)

pytest_plugins = ("pytester",)

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Names of the fixtures that need real infrastructure (filled by infra_fixture).
INFRA_FIXTURES: set[str] = set()

F = TypeVar("F", bound=Callable[..., Any])

_REAPED = pytest.StashKey[list[str]]()
_TIMINGS = pytest.StashKey[dict[str, float]]()


@contextlib.contextmanager
def infra_setup() -> Iterator[None]:
    """Turn InfraMissing into pytest.skip, or pytest.fail under CI=true."""
    try:
        yield
    except InfraMissing as e:
        missing = str(e)
    else:
        return
    # Outside the except block, so the report isn't a chained traceback.
    infra.missing(missing)


def infra_fixture(*, scope: str = "function") -> Callable[[F], F]:
    """``@pytest.fixture`` that also marks every test using it as ``infra``."""

    def decorate(func: F) -> F:
        INFRA_FIXTURES.add(func.__name__)
        return pytest.fixture(scope=scope)(func)  # type: ignore[call-overload, no-any-return]

    return decorate


# --------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------

_previous_sigterm: Any = None


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (a CI timeout, kill PID) becomes ^C, so fixtures still tear down."""
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # pyproject declares the marker; declaring it here too keeps this conftest
    # self-sufficient when copied into a pytester run.
    config.addinivalue_line(
        "markers", "infra: needs real infrastructure (root, netns, dockerd)"
    )
    global _previous_sigterm
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _previous_sigterm
    if _previous_sigterm is not None:
        signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Reap what an earlier, SIGKILLed run left (only runs whose pid is dead)."""
    if os.geteuid() == 0:
        import machine

        cleaned = machine.reap_stale_machines() + infra.reap_stale()
        if cleaned:
            session.config.stash[_REAPED] = cleaned


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        if INFRA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.infra)


def pytest_terminal_summary(
    terminalreporter: Any, exitstatus: int, config: pytest.Config
) -> None:
    """Report the test bed's own costs, and any stale state that was reaped."""
    reaped = config.stash.get(_REAPED, [])
    if reaped:
        terminalreporter.write_line(
            f"testbed: reaped leftovers of a killed run: {reaped}"
        )
    timings = config.stash.get(_TIMINGS, {})
    if timings:
        text = ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        terminalreporter.write_line(f"testbed: {text}")


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@infra_fixture()
def require_infra() -> Callable[..., None]:
    """``require_infra(*tools)``: skip (fail under CI) unless root with *tools*.

    For tests that build infrastructure themselves instead of through a fixture.
    """

    def check(*tools: str) -> None:
        with infra_setup():
            infra.require_root()
            infra.require_tools(*tools)

    return check


@infra_fixture()
def netns() -> Iterator[Netns]:
    """A fresh network namespace ("sdt-<pid>-<hex>", lo up); deleted afterwards."""
    with infra_setup():
        ns = Netns.create()
    try:
        yield ns
    finally:
        ns.delete()


@infra_fixture(scope="session")
def docker_host(pytestconfig: pytest.Config) -> Iterator[DockerHost]:
    """One dockerd in its own namespace for the whole session, with the image.

    Yields a DockerHost: ``.netns``, ``.dockerd``, ``.client`` (docker SDK),
    ``.image`` (id of the busybox stand-in, tagged ``.image_tag``).  Tests
    should take ``clean_docker_host`` instead, which undoes their changes.
    """
    with infra_setup():
        infra.require_tools("busybox")
        host = DockerHost.start()
    timings = pytestconfig.stash.setdefault(_TIMINGS, {})
    timings["session dockerd start"] = host.dockerd.startup_seconds or 0.0
    timings["stand-in image import"] = host.image_seconds
    try:
        yield host
    finally:
        host.close()


@infra_fixture()
def clean_docker_host(docker_host: DockerHost) -> Iterator[DockerHost]:
    """The session docker host; afterwards every container, network, volume,
    image and tag the test added is removed (and removed tags are put back)."""
    docker_host.ensure_alive()
    before = docker_host.snapshot()
    try:
        yield docker_host
    finally:
        docker_host.restore(before)


class _GuardedListeners(Listeners):
    """Listeners whose InfraMissing (say, no redis-server) skips/fails properly."""

    def tcp(
        self, netns: Netns, host: str, port: int, v6only: bool | None = None
    ) -> ManagedProcess:
        with infra_setup():
            return super().tcp(netns, host, port, v6only)
        raise AssertionError("unreachable")  # infra_setup re-raises as skip/fail

    def redis(self, netns: Netns, port: int = 6379) -> ManagedProcess:
        with infra_setup():
            return super().redis(netns, port)
        raise AssertionError("unreachable")


@infra_fixture()
def listeners() -> Iterator[Listeners]:
    """Factory: ``listeners.tcp(netns, host, port, v6only=None)`` and
    ``listeners.redis(netns, port=6379)`` start real listening processes and
    return once they listen; all are stopped at teardown."""
    with infra_setup():
        infra.require_root()
        infra.require_tools("nsenter")
    group = _GuardedListeners()
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
def hanging_socket() -> Iterator[HangingUnixServer]:
    """A unix socket that accepts connections into its backlog and never answers.

    Not an infra fixture: it needs neither root nor any package.
    """
    with HangingUnixServer() as server:
        yield server


@infra_fixture(scope="session")
def unprivileged_venv(pytestconfig: pytest.Config) -> Iterator[Path]:
    """A venv of Debian's /usr/bin/python3 that user nobody can run, with the
    project pip-installed (non-editable); removed at the end of the session."""
    with infra_setup():
        infra.require_root()
        with infra.timed() as t:
            venv = infra.make_unprivileged_venv(REPO_ROOT)
    pytestconfig.stash.setdefault(_TIMINGS, {})["unprivileged venv"] = t[0]
    try:
        yield venv
    finally:
        shutil.rmtree(venv, ignore_errors=True)


# --------------------------------------------------------------------------
# A real systemd machine (machine.py): systemd as PID 1, Debian's docker.service
# --------------------------------------------------------------------------


@infra_fixture(scope="session")
def machine_base(pytestconfig: pytest.Config) -> Iterator[Path]:
    """The cached Debian root file system of the systemd machines (built once,
    ~2 min, under /var/cache/shipyard-doctor-tests; later runs reuse it)."""
    import machine

    with infra_setup(), infra.timed() as t:
        base = machine.base_root()
    pytestconfig.stash.setdefault(_TIMINGS, {})["machine base"] = t[0]
    try:
        yield base
    finally:
        wheel = machine._WHEEL.pop("wheel", None)
        if wheel is not None:
            shutil.rmtree(wheel.parent, ignore_errors=True)


@infra_fixture(scope="module")
def systemd_machine(machine_base: Path, pytestconfig: pytest.Config) -> Iterator[Any]:
    """One booted machine (machine.Machine) for a test module: systemd PID 1,
    docker.service active, the checkout installed at /opt/sd; stopped afterwards.
    Tests that share it must leave it as they found it."""
    import machine

    with infra_setup():
        booted = machine.Machine.boot(machine_base)
    pytestconfig.stash.setdefault(_TIMINGS, {})["machine boot"] = booted.boot_seconds
    try:
        yield booted
    finally:
        booted.stop()


@infra_fixture()
def boot_machine(
    machine_base: Path, pytestconfig: pytest.Config
) -> Iterator[Callable[..., Any]]:
    """Factory: ``boot_machine(nspawn_args=(...), prepare=fn)`` boots a machine of
    the test's own (fn(root) edits its files before the boot); all are stopped."""
    import machine

    machines: list[Any] = []

    def boot(**kw: Any) -> Any:
        with infra_setup():
            booted = machine.Machine.boot(machine_base, **kw)
        machines.append(booted)
        pytestconfig.stash.setdefault(_TIMINGS, {})["machine boot"] = (
            booted.boot_seconds
        )
        return booted

    try:
        yield boot
    finally:
        for booted in machines:
            booted.stop()
