"""Serving: the listening socket every worker shares, and several workers on the pure-Python stack."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fhir_server.serving import listening_socket, uvicorn_config
from fhir_server.settings import Settings
from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent


async def _nodelay_of_accepted_connection(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection that a plain asyncio server (h11's loop) accepted from ``listener``."""
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[int] = loop.create_future()

    class Record(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await loop.create_server(Record, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname())
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
    finally:
        server.close()


def test_connections_accepted_from_the_shared_socket_have_nagle_off_on_asyncio() -> None:
    # uvicorn's own multi-worker socket (protocol 0) leaves this 0: each response then waits ~40 ms for a
    # delayed ACK.
    plain = socket.socket(socket.AF_INET)
    plain.bind(("127.0.0.1", 0))
    assert asyncio.run(_nodelay_of_accepted_connection(plain)) == 0

    assert asyncio.run(_nodelay_of_accepted_connection(listening_socket("127.0.0.1", 0))) != 0


def test_the_stack_is_a_setting_and_several_workers_serve_the_factory() -> None:
    settings = Settings(workers=2, event_loop="asyncio", http_implementation="h11")
    config = uvicorn_config(settings, "fhir_server.app:create_app")
    assert (config.loop, config.workers, config.factory) == ("asyncio", 2, True)
    assert config.http == "fhir_server.serving:H11HeaderDeadlineProtocol"  # uvicorn's h11, with a header deadline
    assert uvicorn_config(Settings(), object()).factory is False
    with pytest.raises(ValueError):
        Settings(http_implementation="carrier-pigeon")
    with pytest.raises(ValueError):
        Settings(workers=0)


def test_two_workers_on_asyncio_and_h11_serve_reads_and_writes(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, FHIR_WORKERS="2", FHIR_EVENT_LOOP="asyncio", FHIR_HTTP_IMPLEMENTATION="h11",
               FHIR_LOG_LEVEL="warning", FHIR_OUTBOX_ENABLED="false")
    command = [sys.executable, "-m", "fhir_server", "serve", "--port", str(port),
               "--store", f"sqlite:///{tmp_path / 'workers.db'}"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 120
        while True:  # connection refused until the socket is bound; 503-free once a worker has started
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(f"{base}/metadata", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) >= 2  # two workers (and uvicorn's resource tracker, if any)

        headers = {"Content-Type": "application/fhir+json"}
        patient = {"resourceType": "Patient", "gender": "female"}
        ids = [httpx.post(f"{base}/Patient", json=patient, headers=headers, timeout=30).json()["id"]
               for _ in range(6)]
        # fresh connections, so that both workers take some: every one reads what any worker wrote
        assert {httpx.get(f"{base}/Patient/{id_}", timeout=30).status_code for id_ in ids} == {200}
    finally:
        server.terminate()
        server.wait(timeout=60)
