"""``send_at``, ``validity_period``, ``client_reference`` and the cancel route, in-process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from schemas.errors import ProviderUnavailable
from schemas.events import CancelRequest, ErrorBody, SendReply
from schemas.records import SmsRecord, SmsStatus
from tests.ingress.conftest import FakeBridge, FakeStore
from tests.ingress.test_routes import assert_error

USE_CASE = uuid.UUID("0b6f3c1e-7d2a-4f5e-9c1b-2a3d4e5f6a7b")
SEND = {"use_case_id": str(USE_CASE), "to_phone_number": "+14155550123", "message": "hi"}


def ahead(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def test_send_at_reaches_the_worker_in_utc(
    client: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    local = (datetime.now(UTC) + timedelta(days=2)).astimezone(timezone(timedelta(hours=-5)))
    body = {**SEND, "send_at": local.isoformat(), "validity_period": 600,
            "client_reference": "order-42"}  # fmt: skip
    answer = await client.post("/v1/sms/", json=body)
    assert answer.status_code == 201, answer.text
    (sent,) = bridge.sent
    assert sent.send_at == local and sent.send_at.utcoffset() == timedelta(0)
    assert (sent.validity_period, sent.client_reference) == (600, "order-42")


@pytest.mark.parametrize(
    "send_at",
    ["2030-01-01T10:00:00", "tomorrow", 1893456000, -timedelta(hours=1),
     timedelta(minutes=14), timedelta(days=35, minutes=1)],
)  # fmt: skip
async def test_bad_send_at_is_invalid_send_at(
    client: httpx.AsyncClient, bridge: FakeBridge, send_at: object
) -> None:
    if isinstance(send_at, timedelta):  # from now: the test may run minutes after collection
        send_at = ahead(send_at)
    answer = await client.post("/v1/sms/", json={**SEND, "send_at": send_at})
    assert_error(answer, 422, "invalid_send_at")
    assert bridge.sent == []


async def test_the_window_is_named(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/sms/", json={**SEND, "send_at": ahead(timedelta(minutes=1))})
    assert "between 15 minutes and 35 days" in answer.json()["detail"]


async def test_invalid_send_at_comes_before_the_use_case_check(
    client: httpx.AsyncClient,
) -> None:
    body = {**SEND, "use_case_id": str(uuid.uuid4()), "send_at": ahead(-timedelta(days=1))}
    assert_error(await client.post("/v1/sms/", json=body), 422, "invalid_send_at")


async def test_another_schema_error_wins_over_send_at(client: httpx.AsyncClient) -> None:
    body = {**SEND, "message": "", "send_at": "not a time"}
    assert_error(await client.post("/v1/sms/", json=body), 422, "invalid_request")


@pytest.mark.parametrize(
    "fields",
    [{"validity_period": 0}, {"validity_period": 36001}, {"validity_period": "60"},
     {"validity_period": 1.5}, {"client_reference": ""}, {"client_reference": "x" * 129}],
)  # fmt: skip
async def test_bad_validity_or_reference_is_invalid_request(
    client: httpx.AsyncClient, bridge: FakeBridge, fields: dict[str, object]
) -> None:
    assert_error(await client.post("/v1/sms/", json={**SEND, **fields}), 422, "invalid_request")
    assert bridge.sent == []


async def test_the_list_filters_by_client_reference(
    client: httpx.AsyncClient, store: FakeStore
) -> None:
    answer = await client.get("/v1/sms/", params={"client_reference": "order-42"})
    assert answer.status_code == 200
    assert store.listed[-1]["client_reference"] == "order-42"
    assert (await client.get("/v1/sms/", params={"status": "scheduled"})).status_code == 200
    assert_error(await client.get("/v1/sms/?client_reference="), 422, "invalid_request")


# -- cancel ----------------------------------------------------------------------------


def stored(store: FakeStore, **fields: object) -> SmsRecord:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "id": uuid.uuid4(), "use_case_id": USE_CASE, "message_sid": "SM" + uuid.uuid4().hex,
        "to_number": "+14155550123", "body": "hi", "status": SmsStatus.SCHEDULED,
        "created_at": now, "updated_at": now, "send_at": now + timedelta(days=1),
        **fields,
    }  # fmt: skip
    record = SmsRecord.model_validate(values)
    store.records[record.id] = record
    return record


async def test_cancel_of_a_scheduled_message(
    client: httpx.AsyncClient, store: FakeStore, bridge: FakeBridge
) -> None:
    record = stored(store)
    answer = await client.post(f"/v1/sms/{record.id}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "canceled" and answer.json()["canceled_at"]
    assert [c.record for c in bridge.cancels] == [record]
    read = await client.get(f"/v1/sms/{record.id}")  # the store still has it scheduled
    assert read.json()["status"] == "canceled"


async def test_cancel_of_a_canceled_message_answers_200_again(
    client: httpx.AsyncClient, store: FakeStore, bridge: FakeBridge
) -> None:
    record = stored(store, status=SmsStatus.CANCELED, canceled_at=datetime.now(UTC))
    answer = await client.post(f"/v1/sms/{record.id}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "canceled"
    assert bridge.cancels == []


@pytest.mark.parametrize(
    "fields",
    [{"send_at": None, "status": SmsStatus.PENDING}, {"status": SmsStatus.SENT},
     {"status": SmsStatus.DELIVERED}],
)  # fmt: skip
async def test_cancel_of_a_message_no_longer_scheduled_is_409(
    client: httpx.AsyncClient, store: FakeStore, bridge: FakeBridge, fields: dict[str, object]
) -> None:
    record = stored(store, **fields)
    assert_error(await client.post(f"/v1/sms/{record.id}/cancel"), 409, "not_cancelable")
    assert bridge.cancels == []


async def test_cancel_of_an_unknown_message_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.post(f"/v1/sms/{uuid.uuid4()}/cancel"), 404, "not_found")
    assert_error(await client.post("/v1/sms/nope/cancel"), 404, "not_found")


async def test_the_workers_error_is_answered(
    client: httpx.AsyncClient, store: FakeStore, bridge: FakeBridge
) -> None:
    record = stored(store)

    def unavailable(cancel: CancelRequest) -> SendReply:
        error = ProviderUnavailable("Twilio could not be reached.")
        return SendReply(
            correlation_id=cancel.correlation_id, request_id=record.id, status_code=503,
            error=ErrorBody(detail=error.detail, code=error.code), retry_after=30,
        )  # fmt: skip

    bridge.cancel_reply = unavailable
    answer = await client.post(f"/v1/sms/{record.id}/cancel")
    assert_error(answer, 503, "provider_unavailable")
    assert answer.headers["Retry-After"] == "30"
    assert (await client.get(f"/v1/sms/{record.id}")).json()["status"] == "scheduled"
