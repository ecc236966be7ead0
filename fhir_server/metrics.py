"""Prometheus metrics: the one place every metric of the server is declared.

Why one registry per app (not prometheus-client's global one): several apps live in one process in the test
suite and in ``load``, and each must count only its own requests. What happens in this process (requests,
delivery attempts) is counted as it happens; what the store knows (outbox depth, the oldest undelivered
message, decisions by outcome and plan) is read from the store when ``/metrics`` is scraped, so every instance
sharing one MongoDB reports the same, true figures, and a restart loses none of them.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fhir_server.storage.base import OutboxSummary

# Seconds; FHIR reads take milliseconds, a $submit up to the PAS limit of 15 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


class Metrics:
    """The app's metrics and the registry ``/metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fhir_requests", "HTTP requests answered, by FHIR interaction, resource type and status",
            ("interaction", "type", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "fhir_request_duration_seconds", "Time to answer a request, by FHIR interaction and resource type",
            ("interaction", "type"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.deliveries = Counter(
            "fhir_outbox_deliveries", "Outbox delivery attempts by this instance, by channel and result "
            "(delivered, failed, dead)", ("channel", "result"), registry=self.registry,
        )
        self.outbox_messages = Gauge(
            "fhir_outbox_messages", "Outbox messages by state (pending, dead, delivered)", ("state",),
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "fhir_outbox_oldest_pending_age_seconds", "Age of the oldest message not yet delivered (0: none waits)",
            registry=self.registry,
        )
        self.decisions = Gauge(
            "fhir_second_opinion_decisions", "Current authorizations by X12 review action (A1 certified, A3 not "
            "certified, A4 pended) and plan", ("decision", "plan"), registry=self.registry,
        )

    def observe_request(self, interaction: str, resource_type: str, status: int, seconds: float) -> None:
        self.requests.labels(interaction, resource_type, str(status)).inc()
        self.latency.labels(interaction, resource_type).observe(seconds)

    def delivery(self, channel: str, result: str) -> None:
        self.deliveries.labels(channel, result).inc()

    def set_outbox(self, summary: OutboxSummary, now: datetime) -> None:
        self.outbox_messages.labels("pending").set(summary.pending)
        self.outbox_messages.labels("dead").set(summary.dead)
        self.outbox_messages.labels("delivered").set(summary.delivered)
        oldest = summary.oldest_pending_at
        self.outbox_oldest_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)

    def set_decisions(self, counts: dict[tuple[str, str], int]) -> None:
        for (decision, plan), count in counts.items():
            self.decisions.labels(decision, plan).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
