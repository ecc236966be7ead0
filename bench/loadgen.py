"""The benchmark's load generator: keep-alive HTTP/1.1 connections on one event loop, no HTTP client library.

Why its own: a client library (httpx: ~150 µs of Python per request) would saturate a core before the server
does, and ``hey`` sends one fixed body, where ``$submit`` needs a unique identifier per request. Here each
connection is an ``asyncio.Protocol`` with httptools' C response parser on uvloop (both come with the server's
default install), and a request is bytes made by a callable: about 20 µs of client CPU per request.

Each run is bounded in time: a warm-up whose requests are not counted, then ``duration`` seconds measured, then
at most ``grace`` seconds for the requests still in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - the fast stack is the default install
    uvloop = None

# Request number -> the request's bytes (request line, headers, body).
RequestMaker = Callable[[int], bytes]


def http_request(method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    """One HTTP/1.1 request as bytes (FHIR JSON both ways)."""
    lines = [f"{method} {target} HTTP/1.1", "Host: bench", "Accept: application/fhir+json"]
    if body is not None:
        lines += ["Content-Type: application/fhir+json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class Measurement:
    """What one run saw: counts, statuses and every latency (seconds, sorted)."""

    seconds: float
    latencies: list[float]
    errors: int
    statuses: Counter = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        index = min(len(self.latencies) - 1, max(0, round(fraction * len(self.latencies)) - 1))
        return self.latencies[index] * 1000

    def summary(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.percentile_ms(0.50), 2),
            "p95_ms": round(self.percentile_ms(0.95), 2),
            "p99_ms": round(self.percentile_ms(0.99), 2),
            "errors": self.errors,
        }


class _Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`send` answers the response's status code."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._waiting: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:  # httptools callback
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(self._parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(ConnectionError("the server closed the connection"))
        self.transport = None

    async def send(self, raw: bytes) -> int:
        if self.transport is None:
            raise ConnectionError("not connected")
        self._waiting = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self._waiting


async def _drive(host: str, port: int, make: RequestMaker, concurrency: int, warmup: float, duration: float,
                 numbers: itertools.count, grace: float) -> Measurement:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = 0
    began = loop.time()
    measure_from = began + warmup
    stop_at = measure_from + duration

    async def client() -> None:
        nonlocal errors
        connection: _Connection | None = None
        while True:
            if loop.time() >= stop_at:
                break
            try:
                if connection is None or connection.transport is None:
                    _, connection = await loop.create_connection(_Connection, host, port)
                raw = make(next(numbers))
                start = time.perf_counter()
                status = await connection.send(raw)
            except (ConnectionError, OSError):
                connection = None
                errors += loop.time() >= measure_from
                await asyncio.sleep(0.01)
                continue
            if loop.time() >= measure_from:
                latencies.append(time.perf_counter() - start)
                statuses[status] += 1
                errors += status >= 400
        if connection is not None and connection.transport is not None:
            connection.transport.close()

    tasks = [asyncio.ensure_future(client()) for _ in range(concurrency)]
    _, unfinished = await asyncio.wait(tasks, timeout=warmup + duration + grace)
    for task in unfinished:  # a request still unanswered ``grace`` seconds after the end counts as an error
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
    latencies.sort()
    return Measurement(seconds=min(loop.time(), stop_at) - measure_from, latencies=latencies,
                       errors=errors + len(unfinished), statuses=statuses)


def run(host: str, port: int, make: RequestMaker, *, concurrency: int, duration: float, warmup: float,
        numbers: itertools.count | None = None, grace: float = 30.0) -> Measurement:
    """Drive ``make``'s requests from ``concurrency`` connections for ``warmup`` + ``duration`` seconds; requests
    still unanswered ``grace`` seconds later are abandoned and counted as errors."""
    numbers = numbers if numbers is not None else itertools.count()
    factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_drive(host, port, make, concurrency, warmup, duration, numbers, grace))
