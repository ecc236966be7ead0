"""Connections that never finish their headers are closed, and a cap on connections answers 503 rather than
letting them pile up: through a real ``serve`` process (the limits live in the HTTP server, not the app)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.concurrency.conftest import start_server, stop_server

HEADER_TIMEOUT = 1.0
# A served or refused request comes at once; the bound only guards against waiting on the slow clients (a stall
# guard with room for a busy machine, not a speed target).
STALL_LIMIT = 5.0
SLOW_CLIENTS = 20
CAP = 8


def half_sent_request(base: str) -> socket.socket:
    """A connection that sends the start of a request and then nothing more (a slowloris client)."""
    host, port = base.split("//")[1].split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module", params=["h11", "httptools"])
def limited_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on each HTTP stack (the header deadline is added to both protocols)."""
    tmp: Path = tmp_path_factory.mktemp("connections")
    process, base = start_server(
        f"sqlite:///{tmp / 'fhir.db'}", tmp, workers=1, FHIR_HTTP_IMPLEMENTATION=request.param,
        FHIR_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT), FHIR_MAX_CONNECTIONS=str(CAP),
    )
    try:
        yield base
    finally:
        stop_server(process)


def test_connections_that_never_finish_their_headers_are_closed(limited_server: str):
    slow = [half_sent_request(limited_server) for _ in range(CAP - 2)]
    try:
        started = time.monotonic()
        answer = httpx.get(f"{limited_server}/metadata", timeout=5)  # others are served meanwhile
        assert answer.status_code == 200 and time.monotonic() - started < STALL_LIMIT
        assert all(closed_by_server(sock, HEADER_TIMEOUT + 2) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_connections_beyond_the_cap_are_answered_503_at_once_and_served_again_after(limited_server: str):
    slow = [half_sent_request(limited_server) for _ in range(SLOW_CLIENTS)]
    try:
        started = time.monotonic()
        refused = httpx.get(f"{limited_server}/metadata", timeout=5)
        assert refused.status_code == 503 and time.monotonic() - started < STALL_LIMIT
        assert all(closed_by_server(sock, HEADER_TIMEOUT + 2) for sock in slow)
        assert httpx.get(f"{limited_server}/metadata", timeout=5).status_code == 200
    finally:
        for sock in slow:
            sock.close()
