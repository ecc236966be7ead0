"""The outbox delivery worker: POSTs what the transactional outbox holds, until each message is delivered.

Messages (plan copies, subscription notifications) are written by the transaction that makes the change they
report (:meth:`fhir_server.storage.base.ResourceOperations.enqueue`), so nothing here can lose or invent one:
the worker only moves them over HTTP. Each round claims the due messages with a lease (a second worker process
on the same store never takes the same message; a worker that dies mid-delivery lets the lease run out and the
message comes back) and POSTs each ``payload`` as ``application/fhir+json`` to its ``destination`` with its
``headers`` (and, for a receiver that wants one, the server's own bearer token: ``authorizer``). A 2xx answer is a
delivery; any other status, a timeout, a refused connection or no token is a failed attempt, tried again after an
exponential back-off (``base_delay * 2**attempts``, capped at ``max_delay``) with jitter
(a random half of it), so a receiver coming back up is not hit by every sender at the same instant.

A message gets ``max_attempts`` tries (its own, from the plan's data, or the worker's default,
``FHIR_OUTBOX_MAX_ATTEMPTS``); after the last failure it is parked as dead, never dropped: it stays in the store,
visible in ``/metrics`` and ``python -m fhir_server outbox list``, until ``outbox retry`` sends it again. Every
failed attempt is logged as a warning (message id, channel, destination, attempt, error), the parking as an error.

Delivery is at least once: a receiver that stored a message but whose answer was lost gets it again, which is
why senders make payloads idempotent (plan copies are conditional creates; notifications carry an event number).
The worker runs in the app's lifespan (:func:`start_worker` / :func:`stop_worker`); tests drive
:meth:`OutboxWorker.run_once` with an injected clock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson

from fhir_server.clock import Now
from fhir_server.metrics import Metrics
from fhir_server.storage.base import OutboxMessage, ResourceStore

log = logging.getLogger(__name__)
# The extra headers a delivery to a destination carries (the server's bearer token where the receiver wants one).
Authorizer = Callable[[str, httpx.AsyncClient], Awaitable[dict[str, str]]]

FHIR_JSON = "application/fhir+json"
# How much of an error answer's body is kept in ``last_error`` (enough to read an OperationOutcome's gist).
ERROR_BODY_CHARS = 300


class OutboxWorker:
    """Delivers the outbox of one store; one instance per process (several processes may share a store)."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Now,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        lease: float = 60.0,
        batch: int = 20,
        timeout: float = 10.0,
        jitter: Callable[[], float] = random.random,
        authorizer: Authorizer | None = None,
        max_attempts: int = 10,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = timedelta(seconds=max(lease, timeout * 2))  # a lease outlives the attempt it covers
        self.batch = batch
        self.jitter = jitter
        self.authorizer = authorizer
        self.max_attempts = max_attempts
        self.metrics = metrics
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    def retry_delay(self, attempts: int) -> timedelta:
        """Wait before the next try after the ``attempts + 1``-th failure: exponential, capped, half jittered."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempts, 62))
        return timedelta(seconds=ceiling / 2 + self.jitter() * ceiling / 2)

    async def run_once(self) -> int:
        """Try the messages due now (one batch), once each; returns how many were delivered."""
        _, delivered = await self._round()
        return delivered

    async def _round(self) -> tuple[int, int]:
        """(claimed, delivered) of one batch."""
        now = self.clock()
        due = await self.store.claim_outbox(now, now + self.lease, self.batch)
        outcomes = await asyncio.gather(*(self._deliver(message) for message in due))
        return len(due), sum(outcomes)

    def attempts_allowed(self, message: OutboxMessage) -> int:
        """The message's own cap (plan data) or this worker's default."""
        return message.max_attempts or self.max_attempts

    async def _deliver(self, message: OutboxMessage) -> bool:
        error = await self._post(message)
        if error is None:
            await self.store.outbox_delivered(message.id, self.clock())
            self._count(message, "delivered")
            return True
        attempt, allowed = message.attempts + 1, self.attempts_allowed(message)
        context = {"message_id": message.id, "channel": message.channel, "destination": message.destination,
                   "attempt": attempt, "max_attempts": allowed, "error": error}
        if attempt >= allowed:
            log.error("outbox delivery failed for the last time; message parked as dead", extra=context)
            await self.store.outbox_dead(message.id, error, self.clock())
            self._count(message, "dead")
            return False
        retry_at = self.clock() + self.retry_delay(message.attempts)
        log.warning("outbox delivery failed; will retry", extra={**context, "retry_at": retry_at.isoformat()})
        await self.store.outbox_failed(message.id, error, retry_at)
        self._count(message, "failed")
        return False

    def _count(self, message: OutboxMessage, result: str) -> None:
        if self.metrics is not None:
            self.metrics.delivery(message.channel, result)

    async def _post(self, message: OutboxMessage) -> str | None:
        """POST the message; None when the receiver accepted it, else what went wrong."""
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **message.headers}
        try:
            if self.authorizer is not None:
                headers.update(await self.authorizer(message.destination, self.client))
        except Exception as exc:  # noqa: BLE001 - no token is a failed attempt like any other
            return f"{type(exc).__name__}: {exc}"
        try:
            answer = await self.client.post(message.destination, content=orjson.dumps(message.payload),
                                            headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}".rstrip(": ")
        if answer.is_success:
            return None
        return f"HTTP {answer.status_code}: {answer.text[:ERROR_BODY_CHARS]}"

    # -- background --------------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """The background task runs (readiness): started and not ended by anything."""
        return self._task is not None and not self._task.done()

    def start(self, poll_seconds: float) -> None:
        """Deliver in the background: a round every ``poll_seconds`` (at once again after a full batch)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(poll_seconds), name="outbox-worker")

    async def _run(self, poll_seconds: float) -> None:
        while True:
            try:
                claimed, _ = await self._round()
            except Exception:  # noqa: BLE001 - a store hiccup must not end delivery for good
                log.exception("outbox round failed")
                claimed = 0
            if claimed < self.batch:  # a full batch: more may be waiting, go again at once
                await asyncio.sleep(poll_seconds)

    async def stop(self) -> None:
        """Stop the background task (an attempt in flight is abandoned; its lease brings it back) and close the
        HTTP client this worker opened."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def start_worker(app: Any) -> OutboxWorker | None:
    """Start the app's outbox worker (from the lifespan, after the store is open) unless settings disable it."""
    settings = app.state.settings
    if not settings.outbox_enabled:
        return None
    outbound = getattr(app.state, "outbound_auth", None)
    worker = OutboxWorker(
        app.state.store,
        clock=app.state.clock,
        base_delay=settings.outbox_base_delay_seconds,
        max_delay=settings.outbox_max_delay_seconds,
        authorizer=outbound.headers_for if outbound is not None else None,
        max_attempts=settings.outbox_max_attempts,
        lease=settings.outbox_lease_seconds,
        timeout=settings.outbox_timeout_seconds,
        metrics=getattr(app.state, "metrics", None),
    )
    worker.start(settings.outbox_poll_seconds)
    app.state.outbox_worker = worker
    return worker


async def stop_worker(app: Any) -> None:
    """Stop the app's outbox worker, if one runs (from the lifespan, before the store closes)."""
    worker: OutboxWorker | None = getattr(app.state, "outbox_worker", None)
    if worker is not None:
        await worker.stop()
        app.state.outbox_worker = None
