"""``/metrics`` on the ingress and on the worker move as messages flow (real processes)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_lifecycle import wait_record
from tests.observability.conftest import worker_metrics_url
from tests.observability.scrape import Samples, names, scrape, value

pytestmark = pytest.mark.integration


async def wait_status(client: httpx.AsyncClient, record_id: str, status: str) -> dict[str, Any]:
    return await wait_record(client, record_id, lambda r: r["status"] == status)


async def eventually(
    url: str, check: Callable[[Samples], bool], timeout_s: float = 30.0
) -> Samples:
    """Scrape until ``check`` holds (worker gauges follow timers); the last scrape either way,
    for the caller's assertion to show."""
    last: Samples = {}

    async def holds() -> bool:
        nonlocal last
        last = await scrape(url)
        return check(last)

    with contextlib.suppress(TimeoutError):
        await wait_until_async(holds, timeout_s, "the metrics", interval_s=0.5)
    return last


def grew(before: Samples, after: Samples) -> Callable[..., float]:
    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    return delta


async def test_counters_move_as_a_message_flows(observed: Stack) -> None:
    ingress_url, worker_url = f"{observed.base_url}/metrics", worker_metrics_url(observed)
    async with observed.admin() as admin, observed.client() as client:
        use_case = await create_use_case(admin)
        ingress_before, worker_before = await scrape(ingress_url), await scrape(worker_url)

        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                  "message": "Hello"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        record = await wait_status(client, answer.json()["id"], "delivered")
        rejected = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": "+15005550001",
                  "message": "Hello"},
        )  # fmt: skip
        assert rejected.json()["code"] == "invalid_destination", rejected.text
        assert (await client.get("/no/such/route")).status_code == 404

    ingress_after = await scrape(ingress_url)
    delta = grew(ingress_before, ingress_after)
    requests = "smslane_http_requests_total"
    assert delta(requests, method="POST", route="/v1/sms/", status="201") == 1
    assert delta(requests, method="POST", route="/v1/sms/", status="422") == 1
    assert delta(requests, method="GET", route="/v1/sms/{sms_id}", status="200") >= 1
    # queued, sent, delivered: three signed callbacks answered 204
    webhook = {"method": "POST", "route": "/v1/webhook/twilio/sms-status", "status": "204"}
    assert delta(requests, **webhook) >= 3
    assert delta(requests, method="GET", route="unmatched", status="404") == 1
    # Route templates, never raw paths: the record's id is in no label.
    assert not any(record["id"] in str(labels) for _, labels in ingress_after)
    assert delta("smslane_sms_send_duration_seconds_count", status="201") == 1
    assert delta("smslane_sms_send_duration_seconds_sum", status="201") > 0
    assert delta("smslane_sms_send_duration_seconds_count", status="422") == 1
    assert (
        delta("smslane_http_request_duration_seconds_count", method="POST", route="/v1/sms/") == 2
    )

    worker_after = await eventually(
        worker_url,
        lambda s: (
            value(s, "smslane_worker_callbacks_total", status="delivered", outcome="applied")
            > value(
                worker_before,
                "smslane_worker_callbacks_total",
                status="delivered",
                outcome="applied",
            )
        ),
    )
    delta = grew(worker_before, worker_after)
    calls = "smslane_provider_request_duration_seconds_count"
    assert delta(calls, operation="create_message") == 2
    assert delta(calls, operation="line_type_lookup") >= 1
    assert delta("smslane_provider_errors_total", operation="create_message", code="21211") == 1
    assert delta("smslane_worker_send_requests_total", outcome="created") == 1
    assert delta("smslane_worker_send_requests_total", outcome="invalid_destination") == 1
    callbacks = "smslane_worker_callbacks_total"
    assert delta(callbacks, status="sent", outcome="applied") == 1
    assert delta(callbacks, status="delivered", outcome="applied") == 1
    # queued maps to pending: a duplicate, unless it fills the sender number (applied)
    queued = [delta(callbacks, status="queued", outcome=o) for o in ("applied", "duplicate")]
    assert sum(queued) == 1


async def test_worker_gauges_follow_records_and_lag(observed: Stack) -> None:
    worker_url = worker_metrics_url(observed)
    # Present once the first recount ran, a second after the worker recovered its tables.
    before = await eventually(worker_url, lambda s: "smslane_worker_records" in names(s))
    assert {
        "smslane_worker_records",
        "smslane_worker_consumer_lag_messages",
        "smslane_worker_records_evicted_total",
    } <= names(before)
    async with observed.admin() as admin, observed.client() as client:
        use_case = await create_use_case(admin)
        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                  "message": "Hello"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        await wait_status(client, answer.json()["id"], "delivered")

    # The gauge is exact after the first recount (a few seconds after start), then stepped.
    delivered = value(before, "smslane_worker_records", status="delivered")
    after = await eventually(
        worker_url, lambda s: value(s, "smslane_worker_records", status="delivered") > delivered
    )
    assert value(after, "smslane_worker_records", status="delivered") == delivered + 1
    assert all(
        value(after, "smslane_worker_records", status=status) >= 0
        for status in ("pending", "sent", "delivered", "failed", "undelivered")
    )
    lag = "smslane_worker_consumer_lag_messages"
    topics = [f"{observed.prefix}{name}" for name in ("sms.send-requests", "sms.callbacks")]
    settled = await eventually(
        worker_url, lambda s: all(value(s, lag, topic=t) == 0 for t in topics)
    )
    assert all((lag, frozenset({("topic", t)})) in settled for t in topics)
    assert all(value(settled, lag, topic=t) == 0 for t in topics)


async def test_metrics_endpoints_speak_prometheus(observed: Stack) -> None:
    for url in (f"{observed.base_url}/metrics", worker_metrics_url(observed)):
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.get(url)
        assert answer.status_code == 200
        content_type = answer.headers["content-type"]
        assert content_type.startswith("text/plain; version="), content_type
        assert "# TYPE" in answer.text
