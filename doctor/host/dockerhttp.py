"""The few read-only Docker API calls a check makes, over the standard library.

``check`` asks the daemon only for /_ping, /version, /info, /containers/json,
/images/json, /networks and one container's inspect. Those are plain GETs of JSON, so
they go through this small HTTP/1.1 client over the unix socket (or TCP, or TLS)
instead of the docker SDK, whose import (requests, urllib3) cost more than all the
checks together (issue 12). Each call has a *total* deadline: a daemon that trickles
one byte a second cannot keep a call past its timeout, unlike a per-read timeout.
The fix engine and deploy, which write, keep the SDK (``dockerapi.make_client``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from shipyard_doctor.records import record

if TYPE_CHECKING:
    import ssl

    from shipyard_doctor.host.dockerapi import Endpoint

# The API version the SDK client is pinned to (dockerapi.make_client): the oldest
# one modern daemons accept, so no version negotiation round-trip is needed.
API_VERSION = "1.24"
# A /containers/json of thousands of containers is a few MiB; past this the answer
# is not read (a bounded read, like every configured file).
MAX_ANSWER = 64 * 1024 * 1024


class ApiTimeout(TimeoutError):
    """A call did not finish within its total deadline."""


class ApiError(Exception):
    """The daemon answered with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} Server Error: {message}")
        self.status = status
        self.message = message


@record
class Answer:
    """A Docker API response: its HTTP status and body."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class DockerHttp:
    """GETs to one Docker endpoint, each on its own connection within ``timeout``
    seconds in total (connect, send and every byte of the answer). The method names
    match the docker SDK's ``APIClient`` for the calls the host modules make."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def close(self) -> None:
        """Nothing stays open between calls."""

    # --- the calls -----------------------------------------------------------------

    def ping(self) -> Answer:
        return self.request("/_ping")

    def version(self, api_version: bool = False) -> dict[str, Any]:
        path = f"/v{API_VERSION}/version" if api_version else "/version"
        return self._json_object(path)

    def info(self) -> dict[str, Any]:
        return self._json_object(f"/v{API_VERSION}/info")

    def containers(self, all: bool = False) -> list[dict[str, Any]]:
        return self._json_list(
            f"/v{API_VERSION}/containers/json", {"all": "1" if all else "0"}
        )

    def images(self) -> list[dict[str, Any]]:
        return self._json_list(f"/v{API_VERSION}/images/json")

    def networks(
        self, filters: Mapping[str, str | list[str]] | None = None
    ) -> list[dict[str, Any]]:
        params = {}
        if filters:
            as_lists = {k: [v] if isinstance(v, str) else v for k, v in filters.items()}
            params["filters"] = json.dumps(as_lists)
        return self._json_list(f"/v{API_VERSION}/networks", params)

    def inspect_container(self, container: str) -> dict[str, Any]:
        return self._json_object(
            f"/v{API_VERSION}/containers/{quote(container, safe='')}/json"
        )

    # --- HTTP ----------------------------------------------------------------------

    def request(self, path: str, params: Mapping[str, str] | None = None) -> Answer:
        """GET ``path``: the answer whatever its status; ApiTimeout past the
        deadline, OSError when the endpoint cannot be reached."""
        deadline = time.monotonic() + self.timeout
        target = f"{path}?{urlencode(params)}" if params else path
        head = (
            f"GET {target} HTTP/1.1\r\nHost: docker\r\n"
            "User-Agent: shipyard-doctor\r\nAccept: application/json\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            sock = self._connect(deadline)
            try:
                _remaining(sock, deadline, self.timeout)
                sock.sendall(head.encode("ascii"))
                return _read_answer(sock, deadline, self.timeout)
            finally:
                sock.close()
        except ApiTimeout:
            raise
        except TimeoutError as exc:
            raise ApiTimeout(_timed_out(self.timeout)) from exc

    def _json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        answer = self.request(path, params)
        if not 200 <= answer.status < 300:
            raise ApiError(answer.status, error_message(answer.text))
        try:
            return json.loads(answer.body)
        except ValueError as exc:
            raise ApiError(answer.status, f"answer is not JSON: {exc}") from None

    def _json_object(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        value = self._json(path, params)
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise ApiError(200, f"{path} answered {kind}, not an object")
        return value

    def _json_list(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        value = self._json(path, params)
        if not isinstance(value, list):
            raise ApiError(200, f"{path} answered {type(value).__name__}, not a list")
        return value

    def _connect(self, deadline: float) -> socket.socket:
        endpoint = self.endpoint
        if endpoint.is_unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                _remaining(sock, deadline, self.timeout)
                sock.connect(endpoint.path)
            except BaseException:
                sock.close()
                raise
            return sock
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApiTimeout(_timed_out(self.timeout))
        sock = socket.create_connection((endpoint.host, endpoint.port), remaining)
        if endpoint.scheme == "https":
            try:
                return _tls_context().wrap_socket(sock, server_hostname=endpoint.host)
            except BaseException:
                sock.close()
                raise
        return sock


def error_message(body: str) -> str:
    """The daemon's message from an error body ({"message": ...} or plain text)."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return body.strip()[:200]
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"]).strip()[:200]
    return body.strip()[:200]


def _tls_context() -> ssl.SSLContext:
    # As the SDK's TLSConfig does with DOCKER_CERT_PATH: the client certificate and
    # the CA in that directory; without it, the system's CAs.
    import ssl

    context = ssl.create_default_context()
    cert_path = os.environ.get("DOCKER_CERT_PATH", "")
    if cert_path:
        context.load_verify_locations(os.path.join(cert_path, "ca.pem"))
        context.load_cert_chain(
            os.path.join(cert_path, "cert.pem"), os.path.join(cert_path, "key.pem")
        )
    return context


def _timed_out(timeout: float) -> str:
    return f"timed out after {timeout:g} s"


def _remaining(sock: socket.socket, deadline: float, timeout: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ApiTimeout(_timed_out(timeout))
    sock.settimeout(remaining)


def _read_answer(sock: socket.socket, deadline: float, timeout: float) -> Answer:
    data = bytearray()
    head_end = -1
    length: int | None = None
    while True:
        if head_end < 0:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                length = _content_length(bytes(data[:head_end]))
        if length is not None and len(data) >= head_end + 4 + length:
            break
        if len(data) > MAX_ANSWER:
            raise ApiError(0, f"answer larger than {MAX_ANSWER // (1024 * 1024)} MiB")
        _remaining(sock, deadline, timeout)
        chunk = sock.recv(65536)
        if not chunk:
            break  # Connection: close ends an answer of unannounced length
        data += chunk
    if head_end < 0:
        raise ConnectionError("the Docker API closed the connection without an answer")
    head = bytes(data[:head_end]).decode("latin-1")
    body = bytes(data[head_end + 4 :])
    status_line, _, header_text = head.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer: {status_line[:60]!r}")
    headers = _headers(header_text)
    if length is not None:
        body = body[:length]
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(body)
    return Answer(int(parts[1]), body)


def _headers(text: str) -> dict[str, str]:
    headers = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _content_length(head: bytes) -> int | None:
    headers = _headers(head.decode("latin-1").partition("\r\n")[2])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            raise ConnectionError("the Docker API's chunked answer was cut short")
        size_text = body[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ConnectionError("the Docker API sent a malformed chunk") from None
        if size == 0:
            return bytes(out)
        start = line_end + 2
        if start + size > len(body):
            raise ConnectionError("the Docker API's chunked answer was cut short")
        out += body[start : start + size]
        pos = start + size + 2
