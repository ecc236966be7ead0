"""A plan's or an EHR's endpoint on loopback: records every POST and answers 200 (or holds the first ones)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import _free_port


class Receiver:
    """``received`` holds (path, headers, body) of each POST; ``hold`` requests are kept waiting until release."""

    def __init__(self, hold: int = 0) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        self.hold = hold
        self.released = threading.Event()
        self.port = _free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                with receiver.lock:
                    receiver.received.append((self.path, dict(self.headers), body))
                    held = receiver.hold > 0
                    receiver.hold -= held
                if held:
                    receiver.released.wait(timeout=120)
                    return  # no answer: the connection is dropped, as a sender that died would see nothing
                payload = b'{"resourceType": "OperationOutcome", "issue": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [body for at, _, body in self.received if at == path]

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
