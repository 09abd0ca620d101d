"""Every route's HTTP shape in-process: keys, status codes, ``{"detail", "code"}`` bodies."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from schemas.events import ErrorBody, SendReply, SendRequest
from schemas.settings import Settings
from tests.ingress.conftest import BASE_URL, FakeBridge, FakeStore, client_for

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "inprocess-auth-token"
WEBHOOK = "/v1/webhook/twilio/sms-status"


def send_body(**overrides: str) -> dict[str, str]:
    return {
        "use_case_id": str(uuid.uuid4()),
        "to_phone_number": "+14155550123",
        "message": "Hello",
        **overrides,
    }


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"detail", "code"} and body["code"] == code and body["detail"], body


async def test_healthz_answers_without_kafka(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


async def test_readyz_names_what_does_not_answer(
    client: httpx.AsyncClient, bridge: FakeBridge, store: FakeStore, settings: Settings
) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    bridge.connected, store.healthy = False, False
    answer = await client.get("/readyz")
    assert_error(answer, 503, "not_ready")
    detail = answer.json()["detail"]
    assert "Kafka" in detail and "store" in detail
    assert settings.kafka_bootstrap_servers not in detail  # public: no internal address


async def test_sms_routes_need_a_key(app: FastAPI) -> None:
    async with client_for(app, key=None) as anonymous:
        answer = await anonymous.get(f"/v1/sms/{uuid.uuid4()}")
        assert_error(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"] == "Bearer"
    async with client_for(app, key="not-a-key") as stranger:
        assert_error(await stranger.post("/v1/sms/", json=send_body()), 401, "unauthorized")


async def test_send_answers_the_workers_record_and_serves_it_back(
    client: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    answer = await client.post("/v1/sms/", json=send_body(), headers={"Idempotency-Key": "k1"})
    assert answer.status_code == 201, answer.text
    record = answer.json()
    (sent,) = bridge.sent
    assert sent.idempotency_key == "k1" and sent.reply_topic == bridge.replies_topic
    # Not in the store yet: served from the records this process just answered.
    again = await client.get(f"/v1/sms/{record['id']}")
    assert again.status_code == 200 and again.json() == record
    await client.post("/v1/sms/", json=send_body(), headers={"Idempotency-Key": "k1"})
    assert bridge.sent[1].request_id == sent.request_id  # same key, same request


async def test_send_maps_the_workers_error_to_its_status(
    client: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    def refused(send: SendRequest) -> SendReply:
        error = ErrorBody(detail="No such use case.", code="use_case_not_found")
        return SendReply(
            correlation_id=send.correlation_id,
            request_id=send.request_id,
            status_code=404,
            error=error,
        )

    bridge.reply = refused
    assert_error(await client.post("/v1/sms/", json=send_body()), 404, "use_case_not_found")


async def test_a_malformed_send_is_invalid_request(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/sms/", json=send_body(to_phone_number="0123"))
    assert_error(answer, 422, "invalid_request")
    assert "to_phone_number" in answer.json()["detail"]
    assert_error(await client.post("/v1/sms/", content=b"[1]"), 422, "invalid_request")


async def test_a_body_over_64_kib_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/sms/", json=send_body(message="x" * 70_000))
    assert_error(answer, 413, "payload_too_large")


async def test_get_and_list_read_the_store(client: httpx.AsyncClient, store: FakeStore) -> None:
    assert_error(await client.get(f"/v1/sms/{uuid.uuid4()}"), 404, "not_found")
    assert_error(await client.get("/v1/sms/not-a-uuid"), 404, "not_found")
    listed = await client.get("/v1/sms/", params={"to_number": "+14155550123", "limit": 5})
    assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}
    # An unencoded "+" reads as a space in a query string: the route puts it back.
    await client.get("/v1/sms/?to_number=+14155550123")
    assert [f["to_number"] for f in store.listed] == ["+14155550123", "+14155550123"]
    answer = await client.get("/v1/sms/", params={"cursor": "bogus"})
    assert_error(answer, 422, "invalid_request")
    assert "cursor" in answer.json()["detail"]
    assert_error(await client.get("/v1/sms/", params={"limit": 101}), 422, "invalid_request")


async def test_admin_routes_need_an_admin_key(
    client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    path = f"/v1/admin/twilio-subaccounts/{ACCOUNT_SID}"
    assert_error(await client.put(path, json={"auth_token": AUTH_TOKEN}), 403, "forbidden")
    assert (await admin.put(path, json={"auth_token": AUTH_TOKEN})).status_code == 201


async def test_admin_writes_are_read_back_from_the_config_view(
    admin: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    path = f"/v1/admin/twilio-subaccounts/{ACCOUNT_SID}"
    first = await admin.put(path, json={"auth_token": AUTH_TOKEN})
    assert first.status_code == 201 and "auth_token" not in first.json()
    assert AUTH_TOKEN not in first.text and "sealed_auth_token" not in first.json()
    assert (await admin.put(path, json={"auth_token": AUTH_TOKEN})).status_code == 200
    brand = await admin.put("/v1/admin/brands/acme", json={"name": "Acme", "status": "verified"})
    assert brand.status_code == 201
    created = await admin.post(
        "/v1/admin/sms-use-cases",
        json={
            "name": "Codes", "account_sid": ACCOUNT_SID, "messaging_service_sid": "MG" + "8" * 32,
            "brand_id": "acme", "a2p_campaign_status": "verified",
            "permitted_regions": ["us"], "active": True,
        },
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["permitted_regions"] == ["US"]
    use_case = f"/v1/admin/sms-use-cases/{created.json()['id']}"
    kind = {"number_type": "long_code"}
    number = await admin.put(f"{use_case}/phone-numbers/+14155550100", json=kind)
    assert number.status_code == 200
    read = (await admin.get(use_case)).json()
    assert [n["phone_number"] for n in read["phone_numbers"]] == ["+14155550100"]
    patched = await admin.patch(use_case, json={"active": False})
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert_error(await admin.put(f"{use_case}/opt-outs/0123"), 422, "invalid_request")
    assert (await admin.delete(use_case)).status_code == 204
    assert_error(await admin.get(use_case), 404, "use_case_not_found")
    assert_error(await admin.get("/v1/admin/sms-use-cases/nope"), 404, "use_case_not_found")


def signed_callback(params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE_URL}{WEBHOOK}", params)
    headers = {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return urlencode(params).encode(), headers


async def test_webhook_stores_a_signed_callback_and_refuses_the_rest(
    app: FastAPI, admin: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    path = f"/v1/admin/twilio-subaccounts/{ACCOUNT_SID}"
    assert (await admin.put(path, json={"auth_token": AUTH_TOKEN})).status_code == 201
    params = {"AccountSid": ACCOUNT_SID, "MessageSid": "SM" + "1" * 32, "MessageStatus": "sent"}
    body, headers = signed_callback(params)
    async with client_for(app, key=None) as twilio:
        assert (await twilio.post(WEBHOOK, content=body, headers=headers)).status_code == 204
        assert [sid for sid, _ in bridge.callbacks] == [params["MessageSid"]]
        forged = {**headers, "X-Twilio-Signature": "forged"}
        answer = await twilio.post(WEBHOOK, content=body, headers=forged)
        assert_error(answer, 403, "invalid_signature")
        bridge.connected = False
        answer = await twilio.post(WEBHOOK, content=body, headers=headers)
        assert_error(answer, 503, "service_unavailable")
    assert len(bridge.callbacks) == 1
