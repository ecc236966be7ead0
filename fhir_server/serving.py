"""How ``serve`` runs the app under uvicorn: connection limits, and a protocol that times out unfinished headers.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection that opens and then
sends its request headers slowly, or never completes them, is held open for ever (a client can exhaust the
server's sockets and file descriptors with a few hundred of them, "slowloris"). :class:`HeaderTimeoutProtocol`
is uvicorn's h11 protocol with one addition: from the moment a connection is made, or a response is complete on
a kept-alive one, the client has ``FHIR_HEADER_TIMEOUT_SECONDS`` to send a complete request line and headers,
after which the connection is closed. Request bodies are not timed here (the body limit bounds them, and a
reverse proxy should buffer them; see the README's deployment section).

``limit_concurrency`` (``FHIR_MAX_CONNECTIONS``) answers 503 to requests beyond that many open connections or
requests in progress, per worker process; ``h11_max_incomplete_event_size`` (``FHIR_MAX_HEADER_BYTES``) refuses
a request line and headers larger than that with 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from fhir_server.settings import Settings, get_settings

PROTOCOL = "fhir_server.serving:HeaderTimeoutProtocol"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.run`` keyword arguments the settings decide (the same for one worker or several)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "http": PROTOCOL,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete in time.

    Built by uvicorn for every connection of every worker process (which is why the timeout comes from the
    environment's settings rather than an argument)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = get_settings().header_timeout_seconds
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request line and headers arrived complete
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()
