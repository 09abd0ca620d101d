"""The inbound webhook and ``GET /v1/sms/inbound/`` in-process: what they publish, how they
answer, which use cases a listing is scoped to."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from ingress.auth import Caller
from ingress.deps import require_api_key
from schemas.config import ConfigEntity, OptOut, OptOutSource
from schemas.errors import ServiceUnavailable
from tests.ingress.conftest import BASE_URL, FakeBridge, FakeStore, client_for
from tests.ingress.test_routes import ACCOUNT_SID, AUTH_TOKEN, assert_error

INBOUND = "/v1/webhook/twilio/sms-inbound"
SERVICE = "MG" + "5" * 32
POOL = "+14155550100"
PERSON = "+14155550199"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def form(body: str = "STOP", **fields: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": "SM" + uuid.uuid4().hex,
        "MessagingServiceSid": SERVICE,
        "From": PERSON,
        "To": POOL,
        "Body": body,
        **fields,
    }


async def post(app: FastAPI, params: dict[str, str], signature: str | None = None) -> Any:
    url = f"{BASE_URL}{INBOUND}"
    signed = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    headers = {
        "X-Twilio-Signature": signed if signature is None else signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with client_for(app, key=None) as twilio:
        return await twilio.post(INBOUND, content=urlencode(params).encode(), headers=headers)


@pytest.fixture
async def use_cases(admin: httpx.AsyncClient) -> list[str]:
    """Two use cases on SERVICE (the second owns POOL) and one on another service."""
    path = f"/v1/admin/twilio-subaccounts/{ACCOUNT_SID}"
    assert (await admin.put(path, json={"auth_token": AUTH_TOKEN})).status_code == 201
    ids = []
    for service in (SERVICE, SERVICE, "MG" + "6" * 32):
        body = {
            "name": "n", "account_sid": ACCOUNT_SID, "messaging_service_sid": service,
            "brand_id": "b", "a2p_campaign_status": "verified", "permitted_regions": ["US"],
            "active": True,
        }  # fmt: skip
        answer = await admin.post("/v1/admin/sms-use-cases", json=body)
        ids.append(answer.json()["id"])
    kind = {"number_type": "long_code"}
    await admin.put(f"/v1/admin/sms-use-cases/{ids[1]}/phone-numbers/{POOL}", json=kind)
    return ids


def keyword_opt_outs(bridge: FakeBridge, use_case_id: str) -> list[OptOut]:
    held = bridge.config.number_opt_outs(uuid.UUID(use_case_id), PERSON)
    return [o for source, o in held.items() if source is OptOutSource.KEYWORD]


async def test_stop_opts_out_of_the_services_use_cases_then_publishes_the_message(
    app: FastAPI, bridge: FakeBridge, use_cases: list[str]
) -> None:
    params = form(" stop ")
    answer = await post(app, params)
    assert answer.status_code == 200 and answer.text == EMPTY_TWIML
    assert answer.headers["content-type"].startswith("text/xml")
    first, second, elsewhere = use_cases
    assert [o.keyword for o in keyword_opt_outs(bridge, first)] == ["STOP"]
    assert len(keyword_opt_outs(bridge, second)) == 1
    assert keyword_opt_outs(bridge, elsewhere) == []
    (message,) = bridge.inbound
    assert message.message_sid == params["MessageSid"] and message.body == " stop "
    assert str(message.use_case_id) == second  # the use case whose pool holds To
    assert (message.keyword, message.keyword_action) == ("STOP", "opt_out")


async def test_a_retried_stop_writes_the_same_opt_outs_again(
    app: FastAPI, bridge: FakeBridge, use_cases: list[str]
) -> None:
    """Written again (the view may be stale), but unchanged: same keys, same content."""
    params = form("STOP")
    await post(app, params)
    first = [keyword_opt_outs(bridge, case) for case in use_cases]
    offset = bridge.config.applied_offset
    await post(app, params)
    assert bridge.config.applied_offset > offset  # written again ...
    assert [keyword_opt_outs(bridge, case) for case in use_cases] == first  # ... unchanged
    assert [m.id for m in bridge.inbound] == [bridge.inbound[0].id] * 2


async def test_a_stop_is_written_even_when_a_stale_view_holds_it(
    app: FastAPI, bridge: FakeBridge, use_cases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """This view holds the opt-out, but another ingress's START may have removed it (a
    tombstone this view has not read yet): the STOP is published anyway, so the person ends
    opted out whatever the view missed."""
    await post(app, form("STOP"))
    stale = keyword_opt_outs(bridge, use_cases[0])
    assert len(stale) == 1
    published: list[object] = []

    async def recording(entity: ConfigEntity) -> None:
        published.append(entity)

    monkeypatch.setattr(bridge, "publish_config", recording)
    await post(app, form("STOP", MessageSid="SM" + uuid.uuid4().hex))
    assert [o for o in published if o in stale] == stale


async def test_unknown_service_stores_the_message_and_changes_nothing(
    app: FastAPI, bridge: FakeBridge, use_cases: list[str]
) -> None:
    offset = bridge.config.applied_offset
    answer = await post(app, form("STOP", MessagingServiceSid="MG" + "0" * 32))
    assert answer.status_code == 200
    assert bridge.config.applied_offset == offset
    (message,) = bridge.inbound
    assert message.use_case_id is None


async def test_refusals_and_drops(app: FastAPI, bridge: FakeBridge, use_cases: list[str]) -> None:
    assert_error(await post(app, form(), signature="forged"), 403, "invalid_signature")
    assert_error(await post(app, form(AccountSid="AC" + "0" * 32)), 403, "invalid_signature")
    no_body = form()
    del no_body["Body"]
    assert (await post(app, no_body)).status_code == 200
    assert (await post(app, form(From=""))).status_code == 200
    assert bridge.inbound == []
    bridge.connected = False
    assert_error(await post(app, form()), 503, "service_unavailable")
    bridge.connected = True
    async with client_for(app, key=None) as twilio:
        huge = await twilio.post(INBOUND, content=b"Body=" + b"x" * 70_000)
    assert_error(huge, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/v1/sms/inbound/", "/v1/sms/inbound"])
async def test_the_listing_is_not_read_as_an_sms_id(
    client: httpx.AsyncClient, store: FakeStore, path: str
) -> None:
    answer = await client.get(path, params={"from_number": " 14155550199", "limit": 5})
    assert answer.status_code == 200 and answer.json() == {"items": [], "next_cursor": None}
    (query,) = store.inbound_queries
    assert (query.from_number, query.limit, query.use_case_ids) == (PERSON, 5, None)


async def test_the_listing_is_scoped_to_the_callers_use_cases(
    app: FastAPI, store: FakeStore
) -> None:
    allowed = frozenset({uuid.uuid4()})
    app.dependency_overrides[require_api_key] = lambda: Caller("k", "sms", allowed)
    async with client_for(app) as scoped:
        assert (await scoped.get("/v1/sms/inbound/")).status_code == 200
        assert_error(await scoped.get("/v1/sms/inbound/?cursor=bogus"), 422, "invalid_request")
        assert_error(await scoped.get("/v1/sms/inbound/?limit=101"), 422, "invalid_request")
    assert store.inbound_queries[0].use_case_ids == allowed


async def test_the_listing_needs_a_key(app: FastAPI) -> None:
    async with client_for(app, key=None) as anonymous:
        assert_error(await anonymous.get("/v1/sms/inbound/"), 401, "unauthorized")


async def test_the_opt_out_list_shows_each_source_and_delete_removes_them_all(
    app: FastAPI, admin: httpx.AsyncClient, use_cases: list[str]
) -> None:
    listing = f"/v1/admin/sms-use-cases/{use_cases[0]}/opt-outs"
    put = await admin.put(f"{listing}/{PERSON}")
    assert put.status_code == 200 and put.json()["source"] == "admin"
    await post(app, form("Unsubscribe"))
    items = (await admin.get(listing)).json()["items"]
    assert [(i["phone_number"], i["source"], i["keyword"]) for i in items] == [
        (PERSON, "admin", None),
        (PERSON, "keyword", "UNSUBSCRIBE"),
    ]
    assert all(set(i) == {"phone_number", "source", "keyword", "created_at"} for i in items)
    await post(app, form("start"))
    assert [i["source"] for i in (await admin.get(listing)).json()["items"]] == ["admin"]
    assert (await admin.delete(f"{listing}/{PERSON}")).status_code == 204
    assert (await admin.get(listing)).json() == {"items": []}
    missing = await admin.get(f"/v1/admin/sms-use-cases/{uuid.uuid4()}/opt-outs")
    assert_error(missing, 404, "use_case_not_found")


async def test_an_unconfirmed_write_is_a_503_and_the_retry_repeats_nothing(
    app: FastAPI, bridge: FakeBridge, use_cases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unconfirmed(message: object) -> None:
        raise ServiceUnavailable("Kafka did not acknowledge the write in time; retry later.")

    params = form("STOP")
    with monkeypatch.context() as patched:
        patched.setattr(bridge, "publish_inbound", unconfirmed)
        assert_error(await post(app, params), 503, "service_unavailable")
    assert bridge.inbound == []
    assert len(keyword_opt_outs(bridge, use_cases[0])) == 1  # written before the message
    written = keyword_opt_outs(bridge, use_cases[0])
    assert (await post(app, params)).status_code == 200  # Twilio's retry
    assert keyword_opt_outs(bridge, use_cases[0]) == written  # the same record again
    assert [m.message_sid for m in bridge.inbound] == [params["MessageSid"]]
