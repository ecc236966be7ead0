"""A notification receiver on loopback: records every POST and answers the statuses it is told to."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """``statuses`` are answered in turn (then 200): ``Receiver(500, 500)`` fails twice, then recovers."""

    def __init__(self, *statuses: int) -> None:
        self.statuses: deque[int] = deque(statuses)
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.popleft() if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/notify"

    def bundles(self, notification_type: str) -> list[dict[str, Any]]:
        """The received Bundles whose status Parameters say ``notification_type``."""
        return [r.body for r in self.received if status_value(r.body, "type") == notification_type]

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def status_value(bundle: dict[str, Any], name: str) -> Any:
    """A top-level value of a notification's status Parameters (first entry)."""
    parameters = bundle["entry"][0]["resource"]["parameter"]
    parameter = next((p for p in parameters if p["name"] == name), None)
    if parameter is None:
        return None
    return next(v for k, v in parameter.items() if k.startswith("value"))
