"""Serving the app over HTTP: one process, or ``FHIR_WORKERS`` processes sharing one listening socket, with
connection limits and a protocol that times out unfinished headers.

The socket. uvicorn's own ``workers=N`` binds the shared socket as ``socket.socket(family)``, whose protocol number
is 0. asyncio turns ``TCP_NODELAY`` on only for sockets whose protocol is ``IPPROTO_TCP``, and an accepted socket
inherits the listener's, so on the pure-Python stack (asyncio loop + h11) every connection of every worker kept
Nagle's algorithm on. A response leaves as two writes (head, then body): the second waited for the client's
delayed ACK, 40 ms on Linux, and every request took 44 ms with ``FHIR_WORKERS=2`` whatever the load. (uvloop sets
``TCP_NODELAY`` on every TCP transport, which is why the fast stack never showed it; a single worker never did
either, because uvicorn then lets asyncio bind with ``IPPROTO_TCP``.) :func:`listening_socket` binds with the
protocol named, for one worker and for several alike, so no path depends on which stack is installed.

The stack: ``loop`` and ``http`` default to ``auto`` (uvloop and httptools, installed with the project where they
build; asyncio and h11 otherwise); ``FHIR_EVENT_LOOP`` / ``FHIR_HTTP_IMPLEMENTATION`` pick one explicitly.

Slow clients. uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection that
opens and then sends its request headers slowly, or never completes them, is held open for ever (a client can
exhaust the server's sockets and file descriptors with a few hundred of them, "slowloris"). The protocols here
are uvicorn's (httptools or h11) with one addition: from the moment a connection is made, or a response is
complete on a kept-alive one, the client has ``FHIR_HEADER_TIMEOUT_SECONDS`` to send a complete request line and
headers, after which the connection is closed. Request bodies are not timed here (the body limit bounds them,
and a reverse proxy should buffer them; see the README's deployment section).

``limit_concurrency`` (``FHIR_MAX_CONNECTIONS``) answers 503 to requests beyond that many open connections or
requests in progress, per worker process; ``h11_max_incomplete_event_size`` (``FHIR_MAX_HEADER_BYTES``) refuses
a request line and headers larger than that with 400 on h11 (httptools applies its parser's own limits).
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
H11_PROTOCOL = "fhir_server.serving:HeaderTimeoutProtocol"
HTTPTOOLS_PROTOCOL = "fhir_server.serving:HttpToolsHeaderTimeoutProtocol"


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose protocol is ``IPPROTO_TCP`` (so that asyncio sets ``TCP_NODELAY`` on every
    connection accepted from it), inheritable by worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def protocol_for(settings: Settings) -> str:
    """The HTTP protocol class (import string) of the configured implementation; ``auto``: httptools when it is
    installed, h11 otherwise."""
    wanted = settings.http_implementation
    if wanted == "auto":
        wanted = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return HTTPTOOLS_PROTOCOL if wanted == "httptools" else H11_PROTOCOL


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn keyword arguments the settings decide (the same for one worker or several)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "loop": settings.event_loop,
        "http": protocol_for(settings),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def uvicorn_config(settings: Settings, app: object) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` (the app itself, or the factory's import string for workers)."""
    return uvicorn.Config(app, workers=settings.workers, factory=isinstance(app, str), **uvicorn_options(settings))


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


class HeaderTimer:
    """The header deadline of one connection, shared by both protocols: armed when a connection is made or a
    kept-alive one finished a response, cancelled when a request's headers are complete, and closing the
    connection when it runs out. Built by uvicorn for every connection of every worker process (which is why the
    timeout comes from the environment's settings rather than an argument)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.timeout = get_settings().header_timeout_seconds
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, transport: asyncio.BaseTransport) -> None:
        self.cancel()
        self._handle = self.loop.call_later(self.timeout, self._expire, transport)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        self._handle = None
        if not transport.is_closing():
            transport.close()


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timer = HeaderTimer(self.loop)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.header_timer.arm(transport)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request line and headers arrived complete
            self.header_timer.cancel()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.header_timer.arm(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.header_timer.cancel()
        super().connection_lost(exc)


if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsHeaderTimeoutProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, closing a connection whose request headers are not complete in time."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.header_timer = HeaderTimer(self.loop)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.header_timer.arm(transport)

        def on_headers_complete(self) -> None:
            self.header_timer.cancel()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # waiting for the next request (uvicorn armed its keep-alive timer), not running a pipelined one
            if not self.transport.is_closing() and self.timeout_keep_alive_task is not None:
                self.header_timer.arm(self.transport)

        def connection_lost(self, exc: Exception | None) -> None:
            self.header_timer.cancel()
            super().connection_lost(exc)
