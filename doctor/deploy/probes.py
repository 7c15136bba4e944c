"""Readiness probes: one attempt each, bounded by a short timeout, True when ready."""

from __future__ import annotations

import http.client
import socket

from shipyard_doctor.stacks import Probe

ATTEMPT_TIMEOUT = 1.0


def describe(probe: Probe) -> str:
    if probe.kind == "http":
        return f"HTTP GET {probe.path} on {probe.port}"
    if probe.kind == "redis":
        return f"redis PING on {probe.port}"
    if probe.kind == "tcp":
        return f"TCP connect to {probe.port}"
    return "still running after a second"


def attempt(probe: Probe, address: str, port: int) -> bool:
    try:
        if probe.kind == "http":
            conn = http.client.HTTPConnection(address, port, timeout=ATTEMPT_TIMEOUT)
            try:
                conn.request("GET", probe.path, headers={"Connection": "close"})
                return conn.getresponse().status < 400
            finally:
                conn.close()
        with socket.create_connection((address, port), ATTEMPT_TIMEOUT) as sock:
            if probe.kind == "redis":
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
            return True
    except (OSError, http.client.HTTPException):
        return False
