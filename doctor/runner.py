"""Run checks concurrently, each isolated: its own thread, its own timeout.

Whatever a check does — return, raise, hang — the run goes on and the user gets a
:class:`CheckRun` for it. Worker threads are daemons, so a check stuck in a system call
cannot keep the process alive after its timeout has been reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from shipyard_doctor.host.gateway import Host
from shipyard_doctor.model import CheckRun, Result, Status
from shipyard_doctor.records import record, replace
from shipyard_doctor.registry import BrokenPlugin, CheckPlugin, Registry

Progress = Callable[[CheckRun], None]


@record
class Selection:
    """What to run: check ids in order, and the reasons for those not to run."""

    ids: tuple[str, ...]
    skipped: Mapping[str, str]  # id -> why the user skipped it
    ignored: frozenset[str]


def order_checks(registry: Registry, wanted: Iterable[str]) -> tuple[str, ...]:
    """``wanted`` plus everything it requires, dependencies first, else by id."""
    result: list[str] = []
    visiting: set[str] = set()

    def visit(check_id: str) -> None:
        if check_id in result or check_id in visiting:
            return  # a cycle is reported by the runner, not here
        visiting.add(check_id)
        plugin = registry.checks.get(check_id)
        for dep in sorted(plugin.requires) if plugin else ():
            if dep in registry.checks or dep in registry.broken_checks:
                visit(dep)
        visiting.discard(check_id)
        result.append(check_id)

    for check_id in sorted(wanted):
        visit(check_id)
    return tuple(result)


def run_checks(
    registry: Registry,
    selection: Selection,
    host: Host,
    timeout: float,
    progress: Progress | None = None,
) -> list[CheckRun]:
    done: dict[str, threading.Event] = {i: threading.Event() for i in selection.ids}
    runs: dict[str, CheckRun] = {}
    lock = threading.Lock()

    def finish(run: CheckRun) -> None:
        result = run.result
        if result.status in (Status.WARNING, Status.FAILURE) and not result.fixes:
            run = replace(run, result=replace(result, fixes=registry.fixes_for(run.id)))
        run = replace(run, ignored=run.id in selection.ignored)
        with lock:
            runs[run.id] = run
        done[run.id].set()
        if progress is not None:
            progress(run)

    def coordinate(check_id: str) -> None:
        try:
            finish(_run_one(check_id, registry, selection, host, timeout, done, runs))
        except BaseException as exc:  # never leave a dependent waiting forever
            finish(_identity(check_id, registry, Result.error(f"runner failed: {exc}")))

    threads = [
        threading.Thread(target=coordinate, args=(i,), name=f"check:{i}", daemon=True)
        for i in selection.ids
    ]
    for thread in threads:
        thread.start()
    for event in done.values():
        event.wait()
    return [runs[i] for i in selection.ids]


def _run_one(
    check_id: str,
    registry: Registry,
    selection: Selection,
    host: Host,
    timeout: float,
    done: Mapping[str, threading.Event],
    runs: Mapping[str, CheckRun],
) -> CheckRun:
    if check_id in selection.skipped:
        return _identity(
            check_id, registry, Result.skipped(selection.skipped[check_id])
        )
    broken = registry.broken_checks.get(check_id)
    if broken is not None:
        return _broken(broken)
    plugin = registry.checks[check_id]
    blocked = _wait_for_dependencies(plugin, registry, done, runs)
    if blocked is not None:
        return _identity(check_id, registry, blocked)
    started = time.monotonic()
    result = _call_with_timeout(plugin, host, timeout)
    return _identity(check_id, registry, result, time.monotonic() - started)


def _wait_for_dependencies(
    plugin: CheckPlugin,
    registry: Registry,
    done: Mapping[str, threading.Event],
    runs: Mapping[str, CheckRun],
) -> Result | None:
    """None when every dependency passed; else the skipped/error result to report."""
    for dep in plugin.requires:
        if dep == plugin.id or _depends_on(registry, dep, plugin.id):
            return Result.error(f"dependency cycle between {plugin.id} and {dep}")
        if dep not in done:
            if dep in registry.checks or dep in registry.broken_checks:
                return Result.skipped(f"needs {dep}, which was not selected")
            return Result.error(
                f"requires check {dep!r}, which is not installed",
                hints=[
                    f"install the plugin that provides {dep!r} or remove {plugin.id}"
                ],
            )
    blocked = []
    for dep in plugin.requires:
        done[dep].wait()
        status = runs[dep].status
        if status not in (Status.OK, Status.WARNING):
            blocked.append(f"{dep} ({status.value})")
    if blocked:
        return Result.skipped(f"needs {', '.join(blocked)} to pass first")
    return None


def _depends_on(registry: Registry, start: str, target: str) -> bool:
    stack, seen = [start], set()
    while stack:
        current = stack.pop()
        if current == target:
            return True
        if current in seen or current not in registry.checks:
            continue
        seen.add(current)
        stack.extend(registry.checks[current].requires)
    return False


def _call_with_timeout(plugin: CheckPlugin, host: Host, timeout: float) -> Result:
    box: list[Result] = []

    def target() -> None:
        box.append(_call(plugin, host))

    worker = threading.Thread(target=target, name=f"run:{plugin.id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return Result.error(
            f"timed out after {timeout:g} s",
            hints=["raise [checks] timeout (or --timeout) if this host is just slow"],
        )
    return box[0]


def _call(plugin: CheckPlugin, host: Host) -> Result:
    try:
        result = plugin.cls().run(host)
    except Exception as exc:
        import traceback  # only for a crash: ~2 ms of every start otherwise

        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return Result.error(
            f"check crashed: {type(exc).__name__}: {exc}",
            details=[f"raised at {frame.filename}:{frame.lineno} in {frame.name}"],
            hints=[f"this is a bug in {plugin.distribution}; please report it"],
            data={"traceback": traceback.format_exc()},
        )
    if not isinstance(result, Result):
        return Result.error(
            f"check returned {type(result).__name__} instead of a Result",
            hints=[f"this is a bug in {plugin.distribution}; please report it"],
        )
    return result


def _identity(
    check_id: str, registry: Registry, result: Result, duration: float = 0.0
) -> CheckRun:
    plugin = registry.checks.get(check_id)
    if plugin is None:
        return CheckRun(check_id, check_id, "plugins", result, duration)
    presumes = tuple(getattr(plugin.cls, "presumes", ()))
    return CheckRun(
        plugin.id, plugin.title, plugin.category, result, duration, presumes=presumes
    )


def _broken(broken: BrokenPlugin) -> CheckRun:
    result = Result.error(
        f"plugin failed to load: {broken.reason}",
        details=[f"entry point {broken.id} = {broken.origin} ({broken.distribution})"],
        hints=[f"reinstall or fix the {broken.distribution} package"],
    )
    return CheckRun(broken.id, broken.id, "plugins", result)
