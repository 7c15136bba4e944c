"""Rendering for deploy, status and undeploy: the only place their words are printed.

Plain text everywhere (it reads the same in a terminal and a log); on a terminal the
pulls get a rich progress display, one bar per layer as Docker reports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from shipyard_doctor.deploy.apply import Outcome
    from shipyard_doctor.deploy.plan import ContainerSpec, DeployPlan
    from shipyard_doctor.deploy.preflight import Preflight
    from shipyard_doctor.deploy.status import StackStatus, UndeployPlan


def render_preflight(pre: Preflight, out: TextIO, forceable: bool = True) -> None:
    """The checks and what blocks; *forceable* False: no daemon answers, so
    --force is no way out (nothing can be deployed without one)."""
    marks = {
        "ok": "ok",
        "warning": "! ",
        "failure": "x ",
        "error": "x ",
        "skipped": "- ",
    }
    print("preflight:", file=out)
    blocking = {b.check for b in pre.blockers}
    for run in pre.runs:
        status = run.result.status.value
        aside = ""
        if run.result.status.is_problem and run.id not in blocking:
            status, aside = "warning", " (does not concern what is deployed)"
        line = f"  {marks.get(status, '  ')} {run.id}: {run.result.summary}{aside}"
        print(line, file=out)
    if not pre.blockers:
        return
    verb = "overridden by --force" if pre.forced else "the deploy cannot start"
    print(f"blockers ({verb}):", file=out)
    for b in pre.blockers:
        fixes = f" [fix: {', '.join(b.fixes)}]" if b.fixes else ""
        print(f"  x {b.check}: {b.summary}{fixes}", file=out)
        for hint in b.hints[:2]:
            print(f"      -> {hint}", file=out)
    if not forceable:
        print(
            "nothing done: the Docker daemon must answer first "
            "(--force cannot deploy without one)",
            file=out,
        )
    elif not pre.forced:
        repair = sorted({f for b in pre.blockers for f in b.fixes})
        if repair:
            print(
                f"repair with `shipyard-doctor fix ID` ({', '.join(repair)}), or "
                "deploy anyway with --force",
                file=out,
            )
        else:
            print("deploy anyway with --force", file=out)


def _ports(spec: ContainerSpec) -> str:
    parts = [
        f"{host if host else 'random'}->{cport}/{proto}"
        for cport, proto, host in spec.ports
    ]
    return ", ".join(parts) or "no published port"


def render_plan(plan: DeployPlan, out: TextIO) -> None:
    from shipyard_doctor.deploy import probes
    from shipyard_doctor.deploy.plan import Action

    title = {
        Action.DEPLOY: "deploy",
        Action.REPAIR: "repair a partial deployment",
        Action.NOTHING: "already deployed",
        Action.LEGACY: "deployed by another tool",
    }[plan.action]
    print(f"Shipyard {plan.stack.name}: {title} (deploy id {plan.deploy_id})", file=out)
    new = "" if plan.network_exists else " (new)"
    print(f"  network:  {plan.network}{new}", file=out)
    if plan.volumes:
        vols = [
            f"{v}{' (new)' if v in plan.new_volumes else ' (kept)'}"
            for v in plan.volumes
        ]
        print(f"  volumes:  {', '.join(vols)}", file=out)
    for source, target in plan.mapped:
        print(f"  image:    {source} -> {target}", file=out)
    print(
        f"  pull:     {', '.join(plan.pulls) or 'nothing (all images are here)'}",
        file=out,
    )
    for found in plan.keep:
        print(f"  keep:     {found.name} (running, {found.id[:12]})", file=out)
    for found in plan.replace:
        legacy = "legacy, " if "org.shipyard-doctor.stack" not in found.labels else ""
        print(
            f"  remove:   {found.name} ({legacy}{found.state}, {found.id[:12]}) "
            "before creating it again; not put back if the deploy fails",
            file=out,
        )
    if plan.create:
        print("  create, in this order:", file=out)
    for spec in plan.create:
        print(f"    {spec.name:<24} {spec.image:<32} {_ports(spec)}", file=out)
        extra = [f"ready: {probes.describe(spec.probe)}", f"restart: {spec.restart}"]
        if spec.env:
            extra.append(
                f"env: {', '.join(spec.env_keys[:6])}"
                + (" ..." if len(spec.env) > 6 else "")
            )
        print(f"      {'; '.join(extra)}", file=out)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=out)


def render_outcome(plan: DeployPlan, outcome: Outcome, out: TextIO) -> None:
    if outcome.ok:
        print("", file=out)
        print("Shipyard Stack Deployed", file=out)
        print("", file=out)
        if plan.password_kept:
            password = f"the password {plan.password_kept} already had (kept)"
        elif plan.secrets.admin_is_default:
            password = "Shipyard's 2014 default password (change it!)"
        else:
            password = "the password you gave"
        print(
            f"You should be able to login as {plan.login_user} with {password} "
            f"at {plan.ui_url}",
            file=out,
        )
        if plan.stack.agent_hint and "agent" not in plan.services:
            hint = plan.stack.agent_hint.format(
                ui_url=plan.ui_url, host_ip=plan.ui_url.split("//")[1].split(":")[0]
            )
            print(f"Agent: {hint}", file=out)
        print(f"(deploy id {plan.deploy_id}, {outcome.seconds:.1f} s)", file=out)
        return
    failure = outcome.failure
    assert failure is not None
    word = "interrupted" if outcome.interrupted else "failed"
    print(f"deploy {word}: {failure.what}", file=out)
    if failure.logs:
        print(f"  last log lines of {failure.container[:12]}:", file=out)
        for line in failure.logs:
            print(f"    | {line}", file=out)
    if outcome.rolled_back:
        print(
            f"rolled back: removed {', '.join(outcome.rolled_back)} (created by this "
            "run); nothing else was touched",
            file=out,
        )
    else:
        print("nothing had been created; nothing was changed", file=out)


def render_status(status: StackStatus, out: TextIO, as_json: bool) -> None:
    if as_json:
        json.dump(status.to_dict(), out, indent=2)
        out.write("\n")
        return
    print(f"Shipyard {status.stack}: {status.state}", file=out)
    for s in status.services:
        f = s.found
        if f is None:
            if not s.optional:
                print(f"  {s.container:<24} missing", file=out)
            continue
        ports = ", ".join(f"{ip or '0.0.0.0'}:{h}->{c}/{p}" for c, p, ip, h in f.ports)
        ready = {True: ", answers", False: ", NOT answering", None: ""}[s.ready]
        legacy = " (legacy, no labels)" if not f.labels else ""
        print(
            f"  {s.container:<24} {f.state}{ready}  {f.image}  {f.id[:12]}  "
            f"{ports}{legacy}",
            file=out,
        )
    if status.network:
        print(f"  network: {status.network}", file=out)
    if status.volumes:
        print(f"  volumes: {', '.join(status.volumes)}", file=out)


def render_undeploy_plan(plan: UndeployPlan, out: TextIO) -> None:
    if plan.empty:
        print(f"Shipyard {plan.stack} is not deployed: nothing to remove", file=out)
        return
    print(f"undeploy Shipyard {plan.stack}: remove", file=out)
    for c in plan.containers:
        print(f"  container {c.name} ({c.image}, {c.state}, {c.id[:12]})", file=out)
    for _, name in plan.networks:
        print(f"  network {name}", file=out)
    if plan.volumes:
        what = (
            "removed (--volumes)"
            if plan.remove_volumes
            else "kept (--volumes removes them)"
        )
        print(f"  volumes {', '.join(plan.volumes)}: {what}", file=out)


def render_removed(removed: tuple[str, ...], out: TextIO) -> None:
    print(f"removed: {', '.join(removed) or 'nothing'}", file=out)


def render_message(text: str, out: TextIO) -> None:
    print(text, file=out)


class TextReporter:
    """Progress as plain lines (not a terminal, or NO_COLOR)."""

    def __init__(self, out: TextIO):
        self.out = out
        self._last: dict[str, str] = {}

    def step(self, text: str) -> None:
        print(f"  {text}", file=self.out, flush=True)

    def pull_started(self, image: str) -> None:
        print(f"  pulling {image}", file=self.out, flush=True)

    def pull_event(self, image: str, event: Mapping[str, Any]) -> None:
        # One line per layer and state change; byte counts would flood a log.
        layer, status = str(event.get("id", "")), str(event.get("status", ""))
        if not layer or self._last.get(layer) == status:
            return
        self._last[layer] = status
        if status in (
            "Pulling fs layer",
            "Download complete",
            "Pull complete",
            "Already exists",
        ):
            print(f"    {layer}: {status}", file=self.out, flush=True)

    def pull_finished(self, image: str) -> None:
        print(f"  pulled {image}", file=self.out, flush=True)


class RichReporter(TextReporter):
    """On a terminal: a progress bar per layer while pulling."""

    def __init__(self, out: TextIO):
        super().__init__(out)
        from rich.console import Console

        self.console = Console(file=out)
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def step(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False, markup=False)

    def pull_started(self, image: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._tasks = {}
        self.console.print(f"  pulling {image}", highlight=False, markup=False)

    def pull_event(self, image: str, event: Mapping[str, Any]) -> None:
        layer = str(event.get("id", ""))
        status = str(event.get("status", ""))
        if not layer or self._progress is None or ":" in layer:
            return
        detail = event.get("progressDetail") or {}
        if layer not in self._tasks:
            self._tasks[layer] = self._progress.add_task(
                f"{layer} {status}", total=None
            )
        task = self._tasks[layer]
        total, current = detail.get("total"), detail.get("current")
        if total:
            self._progress.update(task, total=total, completed=current or 0)
        if status in ("Pull complete", "Already exists", "Download complete"):
            done = self._progress.tasks[task].total or 1
            self._progress.update(task, total=done, completed=done)
        self._progress.update(task, description=f"{layer} {status}")

    def pull_finished(self, image: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.console.print(f"  pulled {image}", highlight=False, markup=False)
