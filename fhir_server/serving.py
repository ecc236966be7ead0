"""Serving the app over HTTP: one process, or ``FHIR_WORKERS`` processes sharing one listening socket.

Why not plain ``uvicorn.run(workers=N)``: uvicorn binds the shared socket as ``socket.socket(family)``, whose
protocol number is 0. asyncio turns ``TCP_NODELAY`` on only for sockets whose protocol is ``IPPROTO_TCP``, and an
accepted socket inherits the listener's, so on the pure-Python stack (asyncio loop + h11) every connection of
every worker kept Nagle's algorithm on. A response leaves as two writes (head, then body): the second waited for
the client's delayed ACK, 40 ms on Linux, and every request took 44 ms with ``FHIR_WORKERS=2`` whatever the
load. (uvloop sets ``TCP_NODELAY`` on every TCP transport, which is why the fast stack never showed it; a single
worker never did either, because uvicorn then lets asyncio bind with ``IPPROTO_TCP``.) :func:`listening_socket`
binds with the protocol named, for one worker and for several alike, so no path depends on which stack is
installed.

The stack: ``loop`` and ``http`` default to ``auto`` (uvloop and httptools, installed with the project where they
build; asyncio and h11 otherwise); ``FHIR_EVENT_LOOP`` / ``FHIR_HTTP_IMPLEMENTATION`` pick one explicitly.

Limits (the same on either stack): ``timeout_keep_alive`` (``FHIR_KEEP_ALIVE_SECONDS``) closes an idle kept-alive
connection; ``limit_concurrency`` (``FHIR_MAX_CONNECTIONS``) answers 503 to requests beyond that many open
connections or requests in progress, per worker process; ``h11_max_incomplete_event_size``
(``FHIR_MAX_HEADER_BYTES``, h11) refuses a larger request line and headers with 400 (httptools has its own fixed
limit). uvicorn closes neither a connection that opens and then sends its request headers slowly nor one that never
completes them: a client could hold the server's sockets with a few hundred of them ("slowloris"). So the HTTP
protocol is uvicorn's own, h11 or httptools, with one addition (:class:`HeaderDeadline`): from the moment a
connection is made, or a response is complete on a kept-alive one, the client has ``FHIR_HEADER_TIMEOUT_SECONDS`` to
send a complete request line and headers, after which the connection is closed. Request bodies are not timed here
(the body limit bounds them, and a reverse proxy should buffer them; see the README's deployment section).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from fhir_server.settings import Settings, get_settings

APP_FACTORY = "fhir_server.app:create_app"
PROTOCOLS = {
    "h11": "fhir_server.serving:H11HeaderDeadlineProtocol",
    "httptools": "fhir_server.serving:HttpToolsHeaderDeadlineProtocol",
}


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose protocol is ``IPPROTO_TCP`` (so that asyncio sets ``TCP_NODELAY`` on every
    connection accepted from it), inheritable by worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def http_protocol(implementation: str) -> str:
    """The import path of the HTTP protocol class for ``auto``, ``h11`` or ``httptools`` (``auto``: httptools where
    it is installed, as uvicorn's own ``auto`` chooses)."""
    if implementation == "auto":
        implementation = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return PROTOCOLS[implementation]


def uvicorn_config(settings: Settings, app: object) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` (the app itself, or the factory's import string for workers)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop=settings.event_loop,
        http=http_protocol(settings.http_implementation),
        workers=settings.workers,
        factory=isinstance(app, str),
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # uvicorn keeps the logging the server set up (fhir_server.logs); its access log is off (it prints query
        # strings, which carry identifiers): the server's own access log names the path only.
        log_config=None,
        access_log=False,
    )


class HeaderDeadline:
    """What both protocols add: a timer, armed while the server waits for a request's line and headers, that
    closes the connection when it runs out. Set up with the protocol, armed when the connection is made, disarmed
    when it is lost; each subclass only says when a request's headers are complete and when a response is.

    uvicorn builds a protocol for every connection of every worker process, which is why the timeout comes from the
    environment's settings rather than an argument."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = get_settings().header_timeout_seconds
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)  # type: ignore[misc]

    def _await_headers(self) -> None:
        self._headers_arrived()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _headers_arrived(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class H11HeaderDeadlineProtocol(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with :class:`HeaderDeadline`."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request line and headers arrived complete
            self._headers_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_headers()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools did not build here: h11 serves ("auto" chooses it)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class HttpToolsHeaderDeadlineProtocol(HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with :class:`HeaderDeadline`."""

        def on_headers_complete(self) -> None:
            self._headers_arrived()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._await_headers()


def serve(settings: Settings, app_factory: str = APP_FACTORY) -> int:
    """Serve until interrupted; the exit status (uvicorn's start-up failure status when one worker could not
    start, as ``uvicorn.run`` answers). Several workers each build their app from the environment (the caller puts
    any command-line overrides there) and accept from the one socket bound here. ``app_factory``
    (``module:callable`` taking the settings) is another app for the benchmark's framework ceiling, served the
    same way."""
    sock = listening_socket(settings.host, settings.port)
    try:
        if settings.workers > 1:
            Multiprocess(uvicorn_config(settings, app_factory), sockets=[sock]).run()
            return 0
        module, _, name = app_factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
        server = uvicorn.Server(uvicorn_config(settings, factory(settings)))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        return 0 if server.started else STARTUP_FAILURE
    except KeyboardInterrupt:
        return 0
    finally:
        sock.close()
