"""Reach the Docker API and say precisely why not when it cannot be reached.

A raw socket connect comes first, because it alone tells apart a missing socket, a
permission problem, a stale socket with no daemon, and a daemon that accepts but never
answers; only then is HTTP spoken, through the small client of ``dockerhttp`` (no
docker SDK on the check path). ``make_client`` gives the SDK's client to the code that
writes (fixes, deploy, report), importing it only then.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from shipyard_doctor.errors import UsageError
from shipyard_doctor.host.dockerhttp import DockerHttp
from shipyard_doctor.records import field, record


class Problem(StrEnum):
    NOT_INSTALLED = "not-installed"
    SOCKET_MISSING = "socket-missing"
    NOT_A_SOCKET = "not-a-socket"
    PERMISSION_DENIED = "permission-denied"
    NOT_RUNNING = "not-running"
    TIMEOUT = "timeout"
    NOT_DOCKER = "not-docker"
    API_TOO_OLD = "api-too-old"
    UNREACHABLE = "unreachable"


@record
class Endpoint:
    """A Docker API address, parsed: a unix socket's path or a TCP host and port."""

    url: str
    scheme: str  # unix | tcp | https
    path: str = ""  # unix sockets
    host: str = ""
    port: int = 0

    @property
    def is_unix(self) -> bool:
        return self.scheme == "unix"

    @property
    def sdk_url(self) -> str:
        if self.is_unix:
            return f"unix://{self.path}"
        scheme = "https" if self.scheme == "https" else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def address(self) -> tuple[str | bytes, int]:
        """(host, port) for getaddrinfo. An ASCII host goes as bytes: for a str,
        getaddrinfo always encodes with the "idna" codec, whose import (stringprep,
        unicodedata) cost ~2 ms; for ASCII names IDNA changes nothing."""
        host = self.host.encode("ascii") if self.host.isascii() else self.host
        return host, self.port


def parse_endpoint(url: str) -> Endpoint:
    from shipyard_doctor.validate import docker_url, shown

    try:
        docker_url(url)  # a port past 65535 or "[::1" is an error, not port 2375
    except ValueError as exc:
        raise UsageError(f"Docker endpoint {shown(url)} {exc}") from None
    parts = urlsplit(url)
    if parts.scheme == "unix":
        path = parts.path or parts.netloc
        if not path.startswith("/"):
            path = "/" + (parts.netloc + parts.path).lstrip("/")
        return Endpoint(url, "unix", path=path)
    if parts.scheme in ("tcp", "http", "https"):
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname:
            raise UsageError(
                f"Docker endpoint {url!r} has no host; use tcp://HOST:PORT"
            )
        default = 2376 if parts.scheme == "https" else 2375
        scheme = "https" if parts.scheme == "https" else "tcp"
        return Endpoint(url, scheme, host=parts.hostname, port=port or default)
    raise UsageError(
        f"unsupported Docker endpoint {url!r}: use unix:///path/to/docker.sock or "
        "tcp://HOST:PORT"
    )


@record
class DockerProbe:
    """What the doctor learned by talking to the configured Docker endpoint."""

    endpoint: Endpoint
    problem: Problem | None
    reason: str = ""  # the low-level cause, e.g. "[Errno 13] Permission denied"
    version: dict[str, Any] = field(default_factory=dict)
    socket_info: str = ""  # e.g. "srw-rw---- root:docker" for a unix socket
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problem is None


def probe(
    endpoint: Endpoint,
    timeout: float,
    min_api: str,
    client: DockerHttp | None = None,
) -> DockerProbe:
    """/_ping and /version of ``endpoint``, each within ``timeout`` in total (not
    only per read); through ``client`` (the run's) or a client of its own."""
    started = time.monotonic()
    early = _connect(endpoint, timeout)
    if early is not None:
        problem, reason, info = early
        return DockerProbe(
            endpoint,
            problem,
            reason,
            socket_info=info,
            elapsed=time.monotonic() - started,
        )
    info = _socket_info(endpoint.path) if endpoint.is_unix else ""
    http = DockerHttp(endpoint, timeout) if client is None else client
    try:
        answer = http.ping()
        if answer.status != 200 or answer.text.strip() != "OK":
            return DockerProbe(
                endpoint,
                Problem.NOT_DOCKER,
                f"/_ping answered HTTP {answer.status} {answer.text[:60]!r}",
                socket_info=info,
                elapsed=time.monotonic() - started,
            )
        version = http.version(api_version=False)
    except Exception as exc:  # OSError, a timeout, an HTTP error: classify
        problem = Problem.TIMEOUT if _is_timeout(exc) else Problem.UNREACHABLE
        return DockerProbe(
            endpoint,
            problem,
            describe_error(exc),
            socket_info=info,
            elapsed=time.monotonic() - started,
        )
    elapsed = time.monotonic() - started
    api = str(version.get("ApiVersion", "0"))
    if _vtuple(api) < _vtuple(min_api):
        return DockerProbe(
            endpoint,
            Problem.API_TOO_OLD,
            f"daemon API {api} is older than {min_api}",
            version=version,
            socket_info=info,
            elapsed=elapsed,
        )
    return DockerProbe(
        endpoint, None, version=version, socket_info=info, elapsed=elapsed
    )


def make_client(endpoint: Endpoint, timeout: float) -> Any:
    """A low-level docker SDK client that makes no request until asked.

    The API version is pinned to the oldest one modern daemons accept, so creating
    the client does not trigger the SDK's own version negotiation round-trip.
    """
    import docker

    tls: Any = False
    if endpoint.scheme == "https":
        cert_path = os.environ.get("DOCKER_CERT_PATH", "")
        if cert_path:
            tls = docker.tls.TLSConfig(
                client_cert=(
                    os.path.join(cert_path, "cert.pem"),
                    os.path.join(cert_path, "key.pem"),
                ),
                ca_cert=os.path.join(cert_path, "ca.pem"),
                verify=True,
            )
        else:
            tls = True
    return docker.APIClient(
        base_url=endpoint.sdk_url, version="1.24", timeout=timeout, tls=tls
    )


def _connect(endpoint: Endpoint, timeout: float) -> tuple[Problem, str, str] | None:
    if endpoint.is_unix:
        try:
            mode = os.stat(endpoint.path).st_mode
        except FileNotFoundError:
            return Problem.SOCKET_MISSING, f"{endpoint.path} does not exist", ""
        except PermissionError as exc:
            return Problem.PERMISSION_DENIED, str(exc), ""
        info = _socket_info(endpoint.path)
        if not stat.S_ISSOCK(mode):
            return Problem.NOT_A_SOCKET, f"{endpoint.path} is not a socket", info
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = endpoint.path
    else:
        info = ""
        try:
            family, kind, proto, _, target = socket.getaddrinfo(
                *endpoint.address, type=socket.SOCK_STREAM
            )[0]
        except socket.gaierror as exc:
            return Problem.UNREACHABLE, f"cannot resolve {endpoint.host}: {exc}", ""
        sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except PermissionError as exc:
        return Problem.PERMISSION_DENIED, str(exc), info
    except ConnectionRefusedError as exc:
        return Problem.NOT_RUNNING, str(exc), info
    except TimeoutError:
        return Problem.TIMEOUT, f"connect did not finish within {timeout:g} s", info
    except OSError as exc:
        return Problem.UNREACHABLE, str(exc), info
    finally:
        sock.close()
    return None


def _socket_info(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{stat.filemode(st.st_mode)} {_user(st.st_uid)}:{_group(st.st_gid)}"


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _is_timeout(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return True
        if "timed out" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def describe_error(exc: BaseException) -> str:
    """An SDK/requests exception as one short line (the reason a fact is missing)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _vtuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)
