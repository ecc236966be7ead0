"""Structured logs: one JSON object per line on stderr, each carrying the request id of the request it belongs to.

Why JSON: log shippers index fields (``request_id``, ``status``, ``message_id``) without parsing prose. The request
id is the one :mod:`asgi_correlation_id` takes from ``X-Request-Id`` (or generates) and echoes in the answer; a
logging filter copies it onto every record made while that request is served, whichever logger made it. What is
never logged: bodies and query strings (they carry member identifiers); the access log names the path only.
``FHIR_LOG_FORMAT=text`` gives plain lines for a terminal.
"""

from __future__ import annotations

import logging
import sys

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "correlation_id": "request_id"}
# Loggers of the libraries the server runs on: their records go through the same handler.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
HANDLER_NAME = "fhir-server"
# httpx logs every outgoing request's full URL at INFO (a subscriber's URL may carry a token), uvicorn's access log
# every request's query string (member identifiers): warnings only. The outbox worker logs its own failed
# deliveries, the server its own access lines.
QUIETER_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "uvicorn.access": logging.WARNING}


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a redirected or captured stderr too)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _: object) -> None:
        pass


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    return JsonFormatter(JSON_FIELDS, rename_fields=RENAMED, timestamp=False)


def configure_logging(level: str = "info", log_format: str = "json") -> None:
    """Send every record to stderr through one handler (replacing the one a previous call installed)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quieter in QUIETER_LOGGERS.items():
        logging.getLogger(name).setLevel(quieter)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
