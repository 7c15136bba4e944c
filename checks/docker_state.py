"""docker-state: is this the Docker daemon, data and deployment the user thinks it is?

After a failed Shipyard install the 2014 user "ended up with a system that wouldn't
see any existing containers or images". The usual causes are all visible from here:
two dockerds at once, the docker CLI (DOCKER_HOST, the current docker context)
pointed at another daemon than the one checked, a daemon on an empty data-root while
another data-root holds the containers, a half-deployed stack whose leftovers block
the next deploy, and the UI published on a random host port (the July-2014 deploy
script's `-p :8000`). Each finding is one line with the real pids, paths and ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard_doctor.model import Check, Findings, Problem, Result, Status

if TYPE_CHECKING:
    from shipyard_doctor.host.dockerviews import DockerSight, StateProblem
    from shipyard_doctor.host.gateway import Container, Host

Found = Findings["StateProblem"]


def _add(found: Found, kind: StateProblem, line: str, *hints: str) -> None:
    status = Status.WARNING if kind.warns else Status.FAILURE
    found.add(Problem(kind, line, status), *hints, detail=True)


class DockerStateCheck(Check):
    id = "docker-state"
    title = "One Docker daemon, the one clients use, with the containers"
    category = "docker"
    requires = ("docker-daemon",)

    def run(self, host: Host) -> Result:
        from shipyard_doctor.host import dockerviews
        from shipyard_doctor.host.facts import Unavailable

        found: Found = Findings()
        url = host.docker().endpoint.url
        seen = dockerviews.sight(host, url)
        _daemons(host, seen, found)
        _clients(seen, found)
        _data_roots(seen, found)
        containers = host.containers()
        if isinstance(containers, Unavailable):
            deployed = "containers not inspected: the Docker API failed"
            found.details.append(f"{deployed} ({containers.reason})")
        else:
            deployed = _stack(host, containers, found)
        evidence = seen.evidence(host.stack(), containers, tuple(found.problems))
        if found.problems:
            return found.result(evidence)
        summary = f"one Docker daemon ({url}), no client pointed elsewhere, {deployed}"
        return Result.ok(summary, details=found.details, evidence=evidence)


def _daemons(host: Host, seen: DockerSight, found: Found) -> None:
    from shipyard_doctor.host import dockerviews
    from shipyard_doctor.host.hints import stop_daemons

    found.details += dockerviews.describe_daemons(seen.daemons)
    here = seen.here
    if len(here) > 1:
        _add(
            found,
            dockerviews.StateProblem.DAEMONS,
            f"{len(here)} dockerd processes are running: "
            + "; ".join(d.describe() for d in here),
            "run one dockerd per host: stop the one you did not mean to start "
            f"({stop_daemons(host, [d.pid for d in here])}); two daemons fight over "
            "docker0, the iptables chains and the socket",
        )


def _clients(seen: DockerSight, found: Found) -> None:
    """Where the docker CLI points; the ones at another daemon are findings."""
    from shipyard_doctor.host import dockerviews

    found.details += dockerviews.describe_clients(seen.clients, seen.daemon_id)
    for view in (v for v in seen.clients if v.elsewhere):
        there = view.endpoint.url
        state = "another daemon" if view.answers else "an endpoint that does not answer"
        _add(
            found,
            dockerviews.StateProblem.CLIENT_ELSEWHERE,
            f"{view.endpoint.source} points the docker CLI at {there}, {state}, not at "
            f"{seen.url} (checked here)",
            f"docker and the deploy talk to {there}: unset DOCKER_HOST / run "
            f"'docker context use default', or check that one: shipyard-doctor "
            f"check --docker-host {there}",
        )


def _data_roots(seen: DockerSight, found: Found) -> None:
    from shipyard_doctor.host import dockerviews

    url, roots = seen.url, seen.roots
    if roots is None:
        return
    found.details += roots.describe(url)
    for other in roots.stranded:
        _add(
            found,
            dockerviews.StateProblem.DATA_ROOT,
            f"data-root {roots.root} of {url} holds no containers while {other.path} "
            f"({other.owner}) holds {other.containers}",
            f'Docker only sees the containers of its own data-root: set "data-root": '
            f'"{other.path}" in the daemon.json dockerd reads (or --data-root) and '
            "restart it, or point the doctor and the CLI at the daemon using it",
        )


def _stack(host: Host, containers: tuple[Container, ...], found: Found) -> str:
    """Half-deployed stack and UI port findings; returns how the stack stands."""
    from shipyard_doctor.host import dockerstate
    from shipyard_doctor.host.dockerviews import StateProblem

    stack = host.stack()
    standing = dockerstate.stack_standing(stack, containers)
    name = f"Shipyard {stack.name}"
    if not standing.present:
        found.details.append(f"stack: {name} is not deployed")
        return f"{name} is not deployed"
    if standing.stopped or standing.missing:
        parts = [f"{', '.join(standing.running)} running"] if standing.running else []
        parts += [f"{s.container} {s.state}" for s in standing.stopped]
        parts += [f"{', '.join(standing.missing)} missing"] if standing.missing else []
        _add(
            found,
            StateProblem.HALF_DEPLOYED,
            f"{name} is half-deployed: " + "; ".join(parts),
            *[f"see why {c} stopped: docker logs {c}" for c in standing.stopped_names],
            "remove the leftovers and deploy again: docker rm -f "
            + " ".join(s.container for s in standing.present),
        )
        return f"{name} is half-deployed"
    ui = dockerstate.ui_ports(stack, containers, host.config.stack.ports)
    if ui is None or ui.on_fixed_port:
        found.details.append(f"stack: {name} is deployed, all containers running")
        return f"{name} is deployed"
    want, cport = ui.fixed, stack.ui_container_port
    if not ui.published:
        line = f"{ui.container} does not publish {cport}/tcp: the UI cannot be reached"
        fix = f"recreate it: docker rm -f {ui.container}, then deploy again "
        _add(found, StateProblem.UI_UNPUBLISHED, line, f"{fix}(-p {want}:{cport})")
        return f"{name} is deployed"
    ip, port = ui.first_published()
    where = ip or "HOST"
    _add(
        found,
        StateProblem.UI_PORT,
        f"{ui.container} publishes {cport}/tcp on host port {port}, not {want}: the UI"
        f" is at http://{where}:{port}",
        f"recreate it on its fixed port: docker rm -f {ui.container}, then deploy "
        f"again with -p {want}:{cport} (the July-2014 deploy script's '-p :8000' lets"
        " Docker pick a random host port)",
    )
    return f"{name} is deployed"
