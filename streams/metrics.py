"""Prometheus metrics of the worker, served on ``SMSLANE_WORKER_METRICS_PORT``.

Everything on the event path is O(1) per event (a counter increment, a histogram
observation, a gauge step). Two things are measured on timers instead:

- consumer lag per source topic, every :data:`LAG_INTERVAL_S`, from the consumer's highwater
  and committed offset of each assigned partition (no broker round trip unless a partition
  has never been committed);
- records by status, which the lifecycle agent keeps up to date as records change; a recount
  from the ``record_by_sid`` table sets it right after table recovery, at start and after
  every rebalance. The recount is a scan, so otherwise it runs rarely: at most every
  :data:`RECOUNT_MIN_INTERVAL_S`, and never more often than 1000 times the duration of the
  previous scan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import aiohttp
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from twilio.base.exceptions import TwilioRestException

from schemas.events import ErrorBody, RawCallback
from schemas.records import SmsStatus
from schemas.settings import Settings
from schemas.topics import Topics
from streams.lifecycle.tables import RecordTable
from streams.worker import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")

LAG_INTERVAL_S = 5.0
RECOUNT_CHECK_S = 1.0
RECOUNT_MIN_INTERVAL_S = 60.0

PROVIDER_DURATION = Histogram(
    "smslane_provider_request_duration_seconds",
    "Duration of one HTTP call to Twilio (each retry counts), by operation.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
PROVIDER_ERRORS = Counter(
    "smslane_provider_errors",
    "Twilio calls that failed, by operation and code: Twilio's error code (21211...), "
    "http_<status> without one, timeout or connection_error.",
    ["operation", "code"],
)
CANCELS = Counter(
    "smslane_worker_cancels",
    "Cancels of scheduled messages, by outcome (canceled, not_cancelable, "
    "provider_unavailable) and reason (request: the API; otherwise the policy change).",
    ["outcome", "reason"],
)
SEND_REQUESTS = Counter(
    "smslane_worker_send_requests",
    "Send requests decided by the worker, by outcome: created, an error code of the "
    "contract (invalid_destination...), or replayed (answered from an earlier outcome).",
    ["outcome"],
)
CALLBACKS = Counter(
    "smslane_worker_callbacks",
    "Twilio status callbacks handled by the lifecycle agent, by Twilio MessageStatus and "
    "outcome: applied (the record changed), duplicate (same rank as the record: nothing new, "
    "e.g. queued on a pending record), regression (lower rank: dropped), held (message not "
    "recorded yet; counted again when applied), dropped (hold full or expired unheard), "
    "rejected (unusable fields), other_subaccount (AccountSid is not the subaccount the "
    "message was sent through: dropped).",
    ["status", "outcome"],
)
SKIPPED_EVENTS = Counter(
    "smslane_worker_skipped_events",
    "Events an agent could not process and skipped (malformed or failing), by agent.",
    ["agent"],
)
EVICTED = Counter(
    "smslane_worker_records_evicted",
    "Records removed from the worker's hot table: terminal after the retention, unfinished "
    "ones once stale.",
)
RECONCILED = Counter(
    "smslane_worker_reconciled",
    "Interrupted send requests (cut off inside the Twilio call) by what reconciliation did: "
    "ordered (asked Twilio), adopted (Twilio had the message), resent (Twilio never got it: "
    "sent once), resend_failed (the resend was not taken: sent again later), waiting (not "
    "found yet, the first attempt may still arrive), waiting_configuration (Twilio could not "
    "be asked: configuration not caught up, subaccount unknown or its token not opened), "
    "waiting_twilio (Twilio's list call failed), waiting_claims (a matching message is too "
    "recent to tell whether another request's claim of it is still on its way), refused (a "
    "candidate message was another request's: not adopted), failed (an unexpected error: "
    "asked again later).",
    ["outcome"],
)
REPAIRED = Counter(
    "smslane_worker_status_repairs",
    "Records still pending or sent after SMSLANE_STATUS_REPAIR_AFTER_SECONDS checked against "
    "Twilio's Messages fetch, by outcome: changed (Twilio's status was applied), unchanged, "
    "failed (the fetch failed: retried later with backoff), no_account (the subaccount the "
    "message was sent through is not configured: retried later with backoff).",
    ["outcome"],
)
RECORDS = Gauge(
    "smslane_worker_records",
    "Records in the worker's hot table (record_by_sid, this worker's partitions), by status.",
    ["status"],
)
CONSUMER_LAG = Gauge(
    "smslane_worker_consumer_lag_messages",
    "Messages in the worker's source topics not yet committed by its consumer group, by topic.",
    ["topic"],
)

_KNOWN_STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "read",
     "undelivered", "failed", "canceled"}
)  # fmt: skip


_OUTCOME_LABELS = {"dropped_hold_full": "dropped", "dropped_unknown_sid": "dropped"}


def lifecycle_event(outcome: str, callback: RawCallback | None = None) -> None:
    """Count one outcome of the lifecycle agent (the keys of its ``counters``)."""
    if outcome == "evicted":
        EVICTED.inc()
    elif outcome == "poison":
        SKIPPED_EVENTS.labels("track_lifecycle").inc()
    else:
        params = callback.params if callback is not None else {}
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        status = status if status in _KNOWN_STATUSES else "other"
        CALLBACKS.labels(status, _OUTCOME_LABELS.get(outcome, outcome)).inc()


def send_decided(error: ErrorBody | None, is_new: bool) -> None:
    """Count one answered send request."""
    SEND_REQUESTS.labels("replayed" if not is_new else error.code if error else "created").inc()


def timed_provider_call(
    operation: str, call: Callable[[], Awaitable[T]]
) -> Callable[[], Awaitable[T]]:
    """Wrap one Twilio call so that its duration and failure code are recorded."""

    async def timed() -> T:
        started = time.perf_counter()
        try:
            return await call()
        except TwilioRestException as exc:
            PROVIDER_ERRORS.labels(operation, str(exc.code or f"http_{exc.status}")).inc()
            raise
        except (TimeoutError, asyncio.CancelledError):
            # The provider's asyncio.wait_for cancels an attempt that runs out of time.
            PROVIDER_ERRORS.labels(operation, "timeout").inc()
            raise
        except (aiohttp.ClientError, OSError):
            PROVIDER_ERRORS.labels(operation, "connection_error").inc()
            raise
        finally:
            PROVIDER_DURATION.labels(operation).observe(time.perf_counter() - started)

    return timed


class RecordCounts:
    """The ``smslane_worker_records`` gauge: stepped on each change, recounted rarely."""

    def __init__(self) -> None:
        self.counted = False
        self.next_recount = 0.0

    def invalidate(self) -> None:
        """The partitions changed: ignore steps until the next recount, which comes soon."""
        self.counted = False
        self.next_recount = 0.0

    def created(self, status: str) -> None:
        if self.counted:
            RECORDS.labels(status).inc()

    def changed(self, old: str, new: str) -> None:
        if self.counted and old != new:
            RECORDS.labels(old).dec()
            RECORDS.labels(new).inc()

    def removed(self, status: str) -> None:
        if self.counted:
            RECORDS.labels(status).dec()

    def recount(self, records: RecordTable) -> None:
        """Set the gauge from the table (synchronously: no change interleaves)."""
        started = time.monotonic()
        tally = records.count_by_status()
        for status in SmsStatus:
            RECORDS.labels(status.value).set(tally.get(status, 0))
        took = time.monotonic() - started
        self.counted = True
        self.next_recount = time.monotonic() + max(RECOUNT_MIN_INTERVAL_S, 1000 * took)


RECORD_COUNTS = RecordCounts()


def source_topics(settings: Settings) -> tuple[str, ...]:
    """The topics the worker's agents consume (changelogs are not agents' work)."""
    specs = (Topics.SEND_REQUESTS, Topics.CREATED, Topics.CALLBACKS, Topics.LIFECYCLE_CONTROL)
    return tuple(spec.name(settings.topic_prefix) for spec in specs)


async def measure_lag(consumer: Any, topics: Iterable[str]) -> dict[str, int]:
    """Per topic, the sum over assigned partitions of highwater minus committed offset."""
    lag = dict.fromkeys(topics, 0)
    for tp in consumer.assignment():
        if tp.topic not in lag:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        position = consumer._committed_offset.get(tp)
        if position is None:
            position = await consumer.position(tp)
        if position is not None:
            lag[tp.topic] += max(0, highwater - position)
    return lag


def install(worker: Worker, records: RecordTable) -> None:
    """Declare the timers that keep the lag and record gauges (from ``records``) current."""
    app = worker.app
    topics = source_topics(worker.settings)
    for topic in topics:
        CONSUMER_LAG.labels(topic).set(0)

    async def measure_consumer_lag() -> None:
        try:
            lag = await measure_lag(app.consumer, topics)
        except Exception as exc:  # not started yet, rebalancing: next tick
            log.debug("consumer lag not measured: %r", exc)
            return
        for topic, value in lag.items():
            CONSUMER_LAG.labels(topic).set(value)

    async def recount_after_rebalance(  # the receiver signature mode's signals declare
        sender: Any, /, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        RECORD_COUNTS.invalidate()

    # Sent once table recovery has completed, at start and after every rebalance.
    app.on_rebalance_complete.connect(recount_after_rebalance)

    async def count_records_by_status() -> None:
        if time.monotonic() >= RECORD_COUNTS.next_recount:
            RECORD_COUNTS.recount(records)

    # Declared by call, not as decorators: Faust's are untyped (mypy strict).
    app.timer(interval=LAG_INTERVAL_S)(measure_consumer_lag)
    app.timer(interval=RECOUNT_CHECK_S)(count_records_by_status)


def serve(settings: Settings) -> None:
    """Serve ``/metrics`` on SMSLANE_HTTP_HOST:SMSLANE_WORKER_METRICS_PORT, in a thread.

    A port already taken is logged and the worker runs on without metrics: delivering
    messages matters more than being observed.
    """
    port = settings.worker_metrics_port
    if port == 0:
        log.info("worker metrics disabled (SMSLANE_WORKER_METRICS_PORT=0)")
        return
    try:
        start_http_server(port, addr=settings.http_host)
    except OSError as exc:
        log.error(
            "worker metrics: cannot listen on %s:%d (%s); set SMSLANE_WORKER_METRICS_PORT "
            "to a free port, or 0 to disable",
            settings.http_host, port, exc.strerror or exc,
            extra={"port": port},
        )  # fmt: skip
        return
    log.info(
        "worker metrics at http://%s:%d/metrics", settings.http_host, port, extra={"port": port}
    )
