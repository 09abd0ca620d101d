"""The pure rules of webhooks: retry schedule, signature, URL rules, filters, lanes."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.config import WebhookEndpoint, WebhookEventType, WebhookSecret
from schemas.webhook_signature import sign, signature, verify
from schemas.webhooks import (
    DeliveryStatus,
    LaneEnqueue,
    LaneOutcome,
    address_problem,
    url_problem,
    webhook_event_id,
)
from streams.webhooks.health import FailureWatch
from streams.webhooks.lanes import RetryPolicy, enqueue, record_outcome
from streams.webhooks.routing import Event, lane_orders, read_event, wants

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CONTRACT = RetryPolicy(
    delays=(5, 30, 120, 600, 3600, 10800, 21600), every=43200, retry_for=72 * 3600
)


def test_the_retry_schedule_is_the_contracts() -> None:
    at, retries = T0, []
    for failures in range(1, 20):
        next_at = CONTRACT.next_attempt(failures, at, T0)
        if next_at is None:
            break
        retries.append((next_at - at).total_seconds())
        at = next_at
    assert retries[:7] == [5, 30, 120, 600, 3600, 10800, 21600]
    assert set(retries[7:]) == {43200}
    assert at <= T0 + timedelta(hours=72) < at + timedelta(hours=12)


def test_delays_count_from_each_failure_and_the_72_hours_from_the_event() -> None:
    late = T0 + timedelta(hours=1)  # the attempt itself took an hour to fail
    assert CONTRACT.next_attempt(1, late, T0) == late + timedelta(seconds=5)
    assert CONTRACT.next_attempt(8, T0 + timedelta(hours=61), T0) is None
    assert CONTRACT.next_attempt(8, T0 + timedelta(hours=60), T0) == T0 + timedelta(hours=72)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_with_every_secret() -> None:
    body = b'{"id":"evt_1"}'
    header = sign(["whsec_old", "whsec_new"], 1700000000, body)
    t, first, second = header.split(",")
    assert t == "t=1700000000"
    assert first == "v1=" + signature("whsec_old", 1700000000, body)
    assert second == "v1=" + signature("whsec_new", 1700000000, body)
    # The documented receiver helper in a few lines of hmac, computed independently:
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_new", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert second == f"v1={expected}"
    for secret in ("whsec_old", "whsec_new"):
        assert verify(header, body, secret, now=1700000010)
    assert not verify(header, body, "whsec_other", now=1700000010)
    assert not verify(header, body + b" ", "whsec_new", now=1700000010)
    assert not verify(header, body, "whsec_new", now=1700000000 + 301), "too old"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "must be https://"),
        ("ftp://example.com/hook", "not an http(s) URL"),
        ("not a url", "not an http(s) URL"),
        ("https:///path", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://127.0.0.1/", "loopback"),
        ("https://localhost:8443/", "loopback"),
        ("https://10.1.2.3/", "private"),
        ("https://192.168.0.1/", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::1]/", "loopback"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://example.com:99999/", "not a URL"),
    ],
)
def test_urls_refused_without_the_private_setting(url: str, why: str) -> None:
    problem = url_problem(url, allow_private=False)
    assert problem is not None and why in problem


def test_public_urls_and_unresolvable_names_are_accepted() -> None:
    for url in ("https://hooks.example.com/x", "https://8.8.8.8/x", "https://nx.invalid/x"):
        assert url_problem(url, allow_private=False) is None
    assert address_problem("93.184.216.34") is None


def test_the_private_setting_allows_http_and_private_addresses() -> None:
    for url in ("http://127.0.0.1:9000/x", "https://10.0.0.1/x", "http://localhost/x"):
        assert url_problem(url, allow_private=True) is None
    assert url_problem("ftp://127.0.0.1/", allow_private=True) is not None


def endpoint(**fields: object) -> WebhookEndpoint:
    defaults: dict[str, object] = {
        "id": uuid.uuid4(),
        "url": "https://hooks.example.com/x",
        "events": (WebhookEventType.STATUS, WebhookEventType.INBOUND),
        "use_case_ids": None,
        "statuses": None,
        "secrets": (WebhookSecret(sealed="x"),),
        "created_at": T0,
        "updated_at": T0,
    }
    return WebhookEndpoint.model_validate({**defaults, **fields})


def status_event(
    use_case: uuid.UUID, status: str = "sent", version: int = 2, **extra: object
) -> Event:
    record = {
        "id": str(uuid.UUID(int=7)),
        "use_case_id": str(use_case),
        "status": status,
        "version": version,
        "updated_at": (T0 + timedelta(seconds=1)).isoformat(),
        **extra,
    }
    event = read_event(WebhookEventType.STATUS, json.dumps(record).encode())
    assert event is not None
    return event


def test_filters_by_type_use_case_status_and_time() -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    event = status_event(mine, "delivered")
    assert wants(endpoint(), event)
    assert wants(endpoint(use_case_ids=(mine,), statuses=("delivered",)), event)
    assert not wants(endpoint(use_case_ids=(other,)), event)
    assert not wants(endpoint(statuses=("failed",)), event)
    assert not wants(endpoint(events=(WebhookEventType.INBOUND,)), event)
    assert not wants(endpoint(enabled=False), event)
    later = endpoint(created_at=T0 + timedelta(minutes=1))
    assert not wants(later, event), "before the endpoint existed"
    assert wants(later, event, replay=True)


def test_unknown_fields_and_statuses_pass_through_to_the_body() -> None:
    event = status_event(uuid.uuid4(), "scheduled", send_at="2026-12-02T00:00:00Z")
    ((key, order),) = lane_orders([endpoint()], event)
    body = json.loads(order.event.body)
    assert body["data"]["send_at"] == "2026-12-02T00:00:00Z"
    assert body["data"]["status"] == "scheduled"
    assert body["id"] == webhook_event_id(WebhookEventType.STATUS, uuid.UUID(int=7), 2)
    assert key == f"{order.endpoint_id}:{uuid.UUID(int=7)}".encode()


def test_event_ids_are_stable_per_version() -> None:
    record = uuid.uuid4()
    assert webhook_event_id(WebhookEventType.STATUS, record, 3) == webhook_event_id(
        WebhookEventType.STATUS, record, 3
    )
    assert webhook_event_id(WebhookEventType.STATUS, record, 3) != webhook_event_id(
        WebhookEventType.STATUS, record, 4
    )


def orders(versions: list[int]) -> list[LaneEnqueue]:
    target = endpoint()
    found = []
    for version in versions:
        ((_, order),) = lane_orders([target], status_event(target.id, version=version))
        found.append(order.model_copy(update={"endpoint_id": target.id}))
    return found


def outcome(order: LaneEnqueue, ok: bool, at: datetime) -> LaneOutcome:
    return LaneOutcome(
        endpoint_id=order.endpoint_id, event_id=order.event.event_id, ok=ok,
        status_code=200 if ok else 500, at=at,
    )  # fmt: skip


def test_a_lane_delivers_versions_in_order_and_later_ones_wait_behind_a_retry() -> None:
    v1, v3, v2 = orders([1, 3, 2])
    lane, _ = enqueue(None, v1, T0)
    lane, _ = enqueue(lane, v3, T0)
    lane, entries = enqueue(lane, v2, T0)
    assert lane is not None and [e.version for e in lane.queue] == [1, 2, 3]
    assert entries[0].next_attempt_at is None, "waiting behind the head"
    same, again = enqueue(lane, v2, T0)
    assert same == lane and again == [], "a duplicate changes nothing"

    failed_at = T0 + timedelta(seconds=1)
    lane, (entry,) = record_outcome(lane, outcome(v1, False, failed_at), CONTRACT)
    assert lane is not None and lane.head.version == 1 and lane.attempts == 1
    assert entry.status is DeliveryStatus.PENDING
    assert lane.next_attempt_at == entry.next_attempt_at == failed_at + timedelta(seconds=5)

    ok_at = T0 + timedelta(seconds=7)
    lane, (entry,) = record_outcome(lane, outcome(v1, True, ok_at), CONTRACT)
    assert (entry.status, entry.attempts, entry.delivered_at) == (
        DeliveryStatus.DELIVERED,
        2,
        ok_at,
    )
    assert lane is not None and lane.head.version == 2 and lane.next_attempt_at == ok_at
    stale, nothing = record_outcome(lane, outcome(v1, True, ok_at), CONTRACT)
    assert stale == lane and nothing == [], "an outcome for another event is stale"


def test_a_delivery_is_failed_after_72_hours_and_the_next_one_goes() -> None:
    v1, v2 = orders([1, 2])
    lane, _ = enqueue(None, v1, T0)
    lane, _ = enqueue(lane, v2, T0)
    assert lane is not None
    lane = lane.model_copy(update={"attempts": 10})
    late = T0 + timedelta(hours=71)
    lane, (entry,) = record_outcome(lane, outcome(v1, False, late), CONTRACT)
    assert entry.status is DeliveryStatus.FAILED and entry.attempts == 11
    assert lane is not None and lane.head.version == 2 and lane.attempts == 0


def test_a_deleted_endpoint_drops_its_lane() -> None:
    (v1,) = orders([1])
    lane, _ = enqueue(None, v1, T0)
    gone = outcome(v1, False, T0).model_copy(update={"gone": True})
    assert record_outcome(lane, gone, CONTRACT) == (None, [])


def test_the_receiver_helper_in_the_docs_accepts_our_signature() -> None:
    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    helper = namespace["verify"]
    body = b'{"id":"evt_1","type":"sms.status"}'
    header = sign(["whsec_old", "whsec_new"], int(time.time()), body)
    assert helper(header, body, "whsec_new") and helper(header, body, "whsec_old")
    assert not helper(header, body, "whsec_other")
    assert not helper(header, body + b"x", "whsec_new")
    assert not helper(sign(["whsec_new"], int(time.time()) - 600, body), body, "whsec_new")


def test_an_endpoint_is_disabled_after_failing_without_a_success_for_the_whole_time() -> None:
    watch = FailureWatch(timedelta(hours=72))
    endpoint, other = uuid.uuid4(), uuid.uuid4()
    assert not watch.note(endpoint, False, T0)
    assert not watch.note(other, False, T0 + timedelta(hours=1))
    assert not watch.note(endpoint, False, T0 + timedelta(hours=71))
    assert not watch.note(endpoint, True, T0 + timedelta(hours=71, minutes=1)), "a success"
    assert not watch.note(endpoint, False, T0 + timedelta(hours=72)), "failing anew"
    assert watch.note(other, False, T0 + timedelta(hours=73))
    assert not watch.note(other, False, T0 + timedelta(hours=73, seconds=1)), "said once"
    assert watch.note(endpoint, False, T0 + timedelta(hours=144))
