"""Prometheus metrics of webhook deliveries (served with the worker's, same registry)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from prometheus_client import Counter, Gauge

from schemas.webhooks import DeliveryLogEntry, DeliveryStatus, LaneOutcome
from streams.webhooks.index import DueEntry

ATTEMPTS = Counter(
    "smslane_webhook_attempts",
    "Webhook delivery attempts, by result: ok, or failed (any non-2xx, timeout, refused or "
    "unreachable address).",
    ["result"],
)
DELIVERIES = Counter(
    "smslane_webhook_deliveries",
    "Webhook deliveries finished, by result: delivered, or failed (retries exhausted).",
    ["result"],
)
DISABLED = Counter(
    "smslane_webhook_endpoints_disabled",
    "Webhook endpoints disabled because every attempt failed for 72 hours.",
)
OLDEST_PENDING = Gauge(
    "smslane_webhook_oldest_pending_seconds",
    "Age of the oldest event waiting for delivery, per endpoint (this worker's lanes).",
    ["endpoint_id"],
)
PENDING = Gauge(
    "smslane_webhook_pending_lanes",
    "Lanes (endpoint x record) with events waiting, per endpoint (this worker's lanes).",
    ["endpoint_id"],
)


def count_outcome(outcome: LaneOutcome, entries: Sequence[DeliveryLogEntry]) -> None:
    """Count an applied attempt outcome and the deliveries it finished."""
    if outcome.gone:
        return
    ATTEMPTS.labels("ok" if outcome.ok else "failed").inc()
    for entry in entries:
        if entry.status is not DeliveryStatus.PENDING:
            DELIVERIES.labels(entry.status.value).inc()


def observe_pending(lanes: Iterable[DueEntry], now: datetime) -> None:
    """Set the per-endpoint gauges from the worker's lane index."""
    oldest: dict[str, float] = {}
    count: dict[str, int] = {}
    for lane in lanes:
        endpoint = str(lane.endpoint_id)
        age = max(0.0, (now - lane.head_created_at).total_seconds())
        oldest[endpoint] = max(oldest.get(endpoint, 0.0), age)
        count[endpoint] = count.get(endpoint, 0) + 1
    for gauge, values in ((OLDEST_PENDING, oldest), (PENDING, count)):
        for labels in list(gauge._metrics):  # endpoints whose lanes emptied go to 0
            if labels[0] not in values:
                gauge.labels(*labels).set(0)
        for endpoint, value in values.items():
            gauge.labels(endpoint).set(value)
