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
"""

from __future__ import annotations

import importlib
import socket

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from fhir_server.settings import Settings

APP_FACTORY = "fhir_server.app:create_app"


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose protocol is ``IPPROTO_TCP`` (so that asyncio sets ``TCP_NODELAY`` on every
    connection accepted from it), inheritable by worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def uvicorn_config(settings: Settings, app: object) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` (the app itself, or the factory's import string for workers)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop=settings.event_loop,
        http=settings.http_implementation,
        workers=settings.workers,
        factory=isinstance(app, str),
    )


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
