"""The doctor's own Docker API client (doctor/host/dockerhttp.py) on real unix-socket
servers: a daemon that trickles one byte at a time cannot hold a call past its total
deadline (issue 12), and plain, chunked and error answers are read as the SDK would.
No root, no Docker: each server is a thread of this test on a socket in a temp dir."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from doctor_cli import run_doctor
from shipyard_doctor.host.dockerapi import Problem, parse_endpoint, probe
from shipyard_doctor.host.dockerhttp import ApiError, ApiTimeout, DockerHttp

Handler = Callable[[socket.socket, threading.Event], None]


class UnixServer:
    """Accepts on a unix socket and hands each connection to ``handler`` in a
    thread; closing stops every handler (they watch ``stop``)."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.stop = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._handler = handler
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            # OSError: the client gave up, which is what a deadline is for.
            with contextlib.suppress(OSError):
                self._handler(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self._accepter.join(5)
        for worker in self._threads:
            worker.join(5)
        self._sock.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Handler], UnixServer]]:
    servers: list[UnixServer] = []

    def start(handler: Handler) -> UnixServer:
        server = UnixServer(tmp_path / f"docker{len(servers)}.sock", handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """A valid answer, one byte every 0.1 s: each read succeeds, the whole never
    arrives in time."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK" + b" " * 10_000
    for byte in answer:
        if stop.wait(0.1):
            return
        conn.sendall(bytes([byte]))


def answer_with(raw: bytes) -> Handler:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(raw)

    return handler


def test_a_trickling_daemon_times_out_within_docker_timeout(serve, tmp_path):
    server = serve(trickle)
    config = tmp_path / "config.toml"
    # The check's own timeout is far away: only the total deadline of the API call
    # can stop it in time.
    config.write_text("[checks]\ntimeout = 20\n[docker]\ntimeout = 1\n")
    run = run_doctor(
        "check",
        "--json",
        "--only",
        "docker-daemon",
        "--docker-host",
        server.url,
        config=config,
    )
    check = run.check("docker-daemon")
    assert check["status"] == "error", check
    assert "timed out" in check["summary"]
    assert "did not answer within 1 s" in check["summary"]
    assert check["duration_ms"] < 1000 + 1000, check["duration_ms"]
    assert run.elapsed < 1 + 5, f"took {run.elapsed:.2f} s"


def test_every_call_has_a_total_deadline(serve):
    server = serve(trickle)
    client = DockerHttp(parse_endpoint(server.url), 0.6)
    started = time.monotonic()
    with pytest.raises(ApiTimeout, match=r"timed out after 0\.6 s"):
        client.info()
    assert time.monotonic() - started < 0.6 + 0.5
    found = probe(parse_endpoint(server.url), 0.6, "1.24")
    assert found.problem is Problem.TIMEOUT
    assert found.elapsed < 0.6 + 0.5


def test_ping_and_version_with_content_length_and_chunked_answers(serve):
    version = json.dumps({"Version": "99.0", "ApiVersion": "1.99"}).encode()
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (version[:7], version[7:])
    )

    def daemon(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked
            + b"0\r\n\r\n"
        )

    server = serve(daemon)
    client = DockerHttp(parse_endpoint(server.url), 2)
    assert client.version() == {"Version": "99.0", "ApiVersion": "1.99"}

    ping = serve(answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"))
    assert DockerHttp(parse_endpoint(ping.url), 2).ping().text == "OK"
    # /_ping answered "OK" but /version of the same server too: not Docker.
    found = probe(parse_endpoint(ping.url), 2, "1.24")
    assert found.problem is Problem.UNREACHABLE
    assert "not JSON" in found.reason


def test_an_error_status_carries_the_daemons_message(serve):
    body = b'{"message":"No such container: nope"}'
    server = serve(
        answer_with(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
    )
    client = DockerHttp(parse_endpoint(server.url), 2)
    with pytest.raises(ApiError) as raised:
        client.inspect_container("nope")
    assert raised.value.status == 404
    assert raised.value.message == "No such container: nope"
    answer = client.request("/v1.24/containers/nope/json")
    assert (answer.status, json.loads(answer.body)) == (404, json.loads(body))


def test_a_closed_connection_without_an_answer_is_unreachable(serve):
    server = serve(answer_with(b""))
    found = probe(parse_endpoint(server.url), 2, "1.24")
    assert found.problem is Problem.UNREACHABLE
    assert "closed the connection without an answer" in found.reason
