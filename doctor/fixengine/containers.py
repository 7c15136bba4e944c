"""Steps that remove or stop a container, for any fix that needs one.

Each goes through the run's one Docker client (``host.docker_client()``) by
container id, so a container created under the same name since the check is never
touched. A forced remove kills the container first and a stop waits for it to exit:
both get a longer timeout of their own than the check's calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard_doctor.fixing import Action

if TYPE_CHECKING:
    from shipyard_doctor.host.gateway import Host

#: Seconds for a removal or a stop: a forced remove kills the container first.
REMOVE_TIMEOUT = 60.0
#: Seconds a stopped container gets to exit before Docker kills it.
STOP_GRACE = 10


def remove_container(
    host: Host, name: str, image: str, state: str, ident: str
) -> Action:
    """An Action removing one container by id (forced: a running one is killed),
    described with its name, image, state and id."""
    what = f"remove container {name} (image {image}, {state}, id {ident})"

    def run() -> None:
        _call(host, "delete", f"containers/{ident}", {"force": True})

    return Action(what, run=run, done_when=lambda: not exists(host, ident))


def stop_container(host: Host, name: str, image: str, ident: str, why: str) -> Action:
    """An Action stopping one container by id; ``docker start`` brings it back."""

    def run() -> None:
        _call(host, "post", f"containers/{ident}/stop", {"t": STOP_GRACE})

    def stopped() -> bool:
        try:
            info = host.docker_client().inspect_container(ident)
        except Exception:
            return False
        return not info["State"]["Running"]

    return Action(
        f"stop container {name} (image {image}, id {ident}); {why} "
        f"(docker start {name} brings it back)",
        run=run,
        done_when=stopped,
    )


def exists(host: Host, ident: str) -> bool:
    """Does the container still exist? Yes when that cannot be told: applying then
    tries, and says why if it fails."""
    import docker.errors

    try:
        host.docker_client().inspect_container(ident)
    except docker.errors.NotFound:
        return False
    except Exception:
        return True
    return True


def _call(host: Host, method: str, path: str, params: dict[str, Any]) -> None:
    client = host.docker_client()
    url = f"{client.base_url}/v{client.api_version}/{path}"
    answer = getattr(client, method)(url, params=params, timeout=REMOVE_TIMEOUT)
    if answer.status_code < 300 or answer.status_code == 304:  # 304: already stopped
        return
    from shipyard_doctor.host.compat import daemon_message

    raise RuntimeError(
        f"Docker answered HTTP {answer.status_code}: {daemon_message(answer.text)}"
    )
