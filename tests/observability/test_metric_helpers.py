"""Metric plumbing without Kafka: route templates, lag arithmetic, record counts, labels."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from prometheus_client import REGISTRY

from feeds.secret_box import new_key
from ingress.app import create_app
from schemas.events import RawCallback
from schemas.settings import Settings
from streams import metrics
from streams.lifecycle.tables import RECORDS, LifecycleState, RecordTable
from tests.streams.factories import create_record


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_by_route_template_not_by_path() -> None:
    app = create_app(
        Settings(
            api_keys=("key-for-tests",),
            admin_api_keys=("admin-for-tests",),
            secret_keys=(new_key(),),
        )
    )
    route = {"method": "GET", "route": "/v1/sms/{sms_id}", "status": "401"}
    before = sample("smslane_http_requests_total", **route)
    unmatched = sample("smslane_http_requests_total", method="GET", route="unmatched", status="404")
    transport = httpx.ASGITransport(app=app)  # no lifespan: no Kafka, no store
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for record_id in ("a", "b", "c"):
            assert (await client.get(f"/v1/sms/{record_id}")).status_code == 401
        assert (await client.get("/nowhere")).status_code == 404
        scraped = await client.get("/metrics")
    assert sample("smslane_http_requests_total", **route) == before + 3
    assert sample("smslane_http_requests_total", method="GET", route="unmatched",
                  status="404") == unmatched + 1  # fmt: skip
    assert 'route="/v1/sms/{sms_id}"' in scraped.text and 'route="/nowhere"' not in scraped.text


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    """What measure_lag reads from Faust's consumer."""

    highwaters: dict[TP, int | None]
    _committed_offset: dict[TP, int] = field(default_factory=dict)
    positions: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)


async def test_lag_is_highwater_minus_committed_summed_per_topic() -> None:
    a0, a1, b0, c0, other = TP("a", 0), TP("a", 1), TP("b", 0), TP("c", 0), TP("changelog", 0)
    consumer = FakeConsumer(
        highwaters={a0: 10, a1: 5, b0: 7, c0: None, other: 1000},
        _committed_offset={a0: 4, a1: 5},
        positions={b0: 2},  # never committed: the fetch position counts
    )
    assert await metrics.measure_lag(consumer, ["a", "b", "c"]) == {"a": 6, "b": 5, "c": 0}


def records(*statuses: str) -> RecordTable:
    """A record table holding one record per status, and one undecodable value."""
    table = {b"SMbad": b"not json"}
    for n, status in enumerate(statuses):
        sid = f"SM{n}"
        state = LifecycleState(record=create_record(message_sid=sid, status=status), version=1)
        table[sid.encode()] = RECORDS.encode(state)
    return RecordTable(table)


def test_record_counts_step_only_after_a_recount() -> None:
    counts = metrics.RecordCounts()
    counts.created("pending")  # before any recount: ignored, the recount will see it
    counts.recount(records("pending", "sent", "delivered"))
    assert sample("smslane_worker_records", status="pending") == 1
    counts.created("pending")
    counts.changed("pending", "sent")
    counts.changed("sent", "delivered")
    counts.removed("delivered")
    assert [sample("smslane_worker_records", status=s) for s in ("pending", "sent", "delivered")] \
        == [1, 1, 1]  # fmt: skip
    assert counts.next_recount > 0
    counts.invalidate()
    counts.changed("pending", "sent")  # ignored until the next recount
    assert sample("smslane_worker_records", status="sent") == 1
    assert counts.next_recount == 0


def callback(**params: str) -> RawCallback:
    return RawCallback(receipt_id=uuid4(), received_at=datetime.now(UTC), params=params)


@pytest.mark.parametrize(
    ("outcome", "params", "labels"),
    [
        ("applied", {"MessageStatus": "Delivered"}, ("delivered", "applied")),
        ("duplicate", {"SmsStatus": "queued"}, ("queued", "duplicate")),
        ("rejected", {"MessageStatus": "exploded"}, ("other", "rejected")),
        ("dropped_hold_full", {"MessageStatus": "sent"}, ("sent", "dropped")),
        ("dropped_unknown_sid", {}, ("other", "dropped")),
    ],
)
def test_lifecycle_outcomes_become_bounded_labels(
    outcome: str, params: dict[str, str], labels: tuple[str, str]
) -> None:
    name = "smslane_worker_callbacks_total"
    before = sample(name, status=labels[0], outcome=labels[1])
    metrics.lifecycle_event(outcome, callback(**params))
    assert sample(name, status=labels[0], outcome=labels[1]) == before + 1


def test_evictions_and_poison_events_have_their_own_counters() -> None:
    evicted = sample("smslane_worker_records_evicted_total")
    skipped = sample("smslane_worker_skipped_events_total", agent="track_lifecycle")
    metrics.lifecycle_event("evicted")
    metrics.lifecycle_event("poison")
    assert sample("smslane_worker_records_evicted_total") == evicted + 1
    assert sample("smslane_worker_skipped_events_total", agent="track_lifecycle") == skipped + 1


async def test_provider_calls_are_timed_and_failures_counted_by_code() -> None:
    from twilio.base.exceptions import TwilioRestException

    async def rejected() -> Any:
        raise TwilioRestException(400, "uri", "bad number", code=21211)

    async def timed_out() -> Any:
        raise TimeoutError()

    count = sample("smslane_provider_request_duration_seconds_count", operation="op_test")
    for call, code in ((rejected, "21211"), (timed_out, "timeout")):
        with pytest.raises((TwilioRestException, TimeoutError)):
            await metrics.timed_provider_call("op_test", call)()
        assert sample("smslane_provider_errors_total", operation="op_test", code=code) >= 1

    async def hangs() -> Any:
        await asyncio.sleep(10)

    timeouts = sample("smslane_provider_errors_total", operation="op_test", code="timeout")
    with pytest.raises(TimeoutError):  # as the provider bounds each attempt
        await asyncio.wait_for(metrics.timed_provider_call("op_test", hangs)(), 0.01)
    assert sample("smslane_provider_errors_total", operation="op_test", code="timeout") == (
        timeouts + 1
    )
    assert (
        sample("smslane_provider_request_duration_seconds_count", operation="op_test") == count + 3
    )
