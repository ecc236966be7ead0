"""Real server processes for tests that need more than one (``python -m fhir_server serve`` on loopback ports).

Waits poll with deadlines (the processes run on their own clocks); nothing asserts a duration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from fhir_server.settings import PROJECT_ROOT

DEADLINE_SECONDS = 90.0


def wait_until(condition: Callable[[], Any], what: str, deadline_seconds: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


class ServerProcess:
    """One server process on a fixed port and store, with extra ``FHIR_*`` environment settings."""

    def __init__(self, port: int, store_url: str, environment: dict[str, str] | None = None) -> None:
        self.port = port
        self.store_url = store_url
        self.environment = environment or {}
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> None:
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("FHIR_")}
        command = [sys.executable, "-m", "fhir_server", "serve", "--port", str(self.port), "--store", self.store_url]
        # The suite's development mode (tests/conftest.py) on loopback, unless the test sets FHIR_AUTH itself.
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**inherited, "FHIR_AUTH": "off", **self.environment},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, f"the server on port {self.port} to start")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "the server exited"
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as a crash or an OOM kill would end it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
