"""API keys in-process: made, listed and revoked through the admin API; scope on /v1/sms*."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ingress import examples
from schemas.errors import UseCaseNotFound
from schemas.records import SmsRecord
from tests.ingress.conftest import FakeBridge, FakeStore, client_for
from tests.ingress.test_routes import assert_error, send_body

KEYS = "/v1/admin/api-keys"


async def new_use_case(admin: httpx.AsyncClient) -> str:
    answer = await admin.post("/v1/admin/sms-use-cases", json=examples.USE_CASE_BODY)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def new_key(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await admin.post(KEYS, json={"name": "orders", "role": "sms", **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def record_in(use_case_id: str) -> SmsRecord:
    now = datetime.now(UTC)
    return SmsRecord(
        id=uuid.uuid4(), use_case_id=uuid.UUID(use_case_id), message_sid="SM" + uuid.uuid4().hex,
        to_number="+14155550123", body="hi", created_at=now, updated_at=now,
    )  # fmt: skip


async def test_a_key_is_shown_once_and_listed_without_its_secret(
    admin: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    use_case = await new_use_case(admin)
    answer = await admin.post(
        KEYS, json={"name": "orders", "role": "sms", "use_case_ids": [use_case]}
    )
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    created = answer.json()
    assert set(created) == {"id", "name", "role", "use_case_ids", "created_at", "key"}
    assert created["key"].startswith("sl_sms_") and created["use_case_ids"] == [use_case]
    listed = await admin.get(KEYS)
    assert listed.status_code == 200
    shown = {k: v for k, v in created.items() if k != "key"}
    assert listed.json() == {"items": [shown]}
    secret = created["key"].removeprefix("sl_sms_")
    assert secret not in listed.text and secret[:12] not in listed.text
    stored = bridge.config.api_keys.get(uuid.UUID(created["id"]))
    assert stored is not None and stored.key_sha256 not in listed.text + answer.text


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"name": "x", "role": "sms"}, "use_case_ids"),  # an sms key names its scope
        ({"name": "x", "role": "sms", "use_case_ids": []}, "use_case_ids"),
        ({"name": "x", "role": "admin", "use_case_ids": [str(uuid.uuid4())]}, "admin"),
        ({"name": "", "role": "sms", "use_case_ids": None}, "name"),
        ({"name": "x", "role": "root", "use_case_ids": None}, "role"),
        ({"name": "x", "role": "sms", "use_case_ids": ["nope"]}, "use_case_ids"),
        ({"name": "x", "role": "sms", "use_case_ids": [str(uuid.uuid4())]}, "no such use case"),
    ],
)
async def test_a_bad_key_body_is_invalid_request(
    admin: httpx.AsyncClient, body: dict[str, Any], why: str
) -> None:
    answer = await admin.post(KEYS, json=body)
    assert_error(answer, 422, "invalid_request")
    assert why in answer.json()["detail"]


async def test_a_deleted_use_case_cannot_be_in_a_scope(admin: httpx.AsyncClient) -> None:
    use_case = await new_use_case(admin)
    assert (await admin.delete(f"/v1/admin/sms-use-cases/{use_case}")).status_code == 204
    answer = await admin.post(KEYS, json={"name": "x", "role": "sms", "use_case_ids": [use_case]})
    assert_error(answer, 422, "invalid_request")


async def test_a_revoked_key_is_refused_and_unknown_ids_are_404(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    created = await new_key(admin, use_case_ids=None)
    async with client_for(app, created["key"]) as holder:
        assert (await holder.get("/v1/sms/")).status_code == 200
        assert (await admin.delete(f"{KEYS}/{created['id']}")).status_code == 204
        assert_error(await holder.get("/v1/sms/"), 401, "unauthorized")
    assert (await admin.get(KEYS)).json() == {"items": []}
    assert_error(await admin.delete(f"{KEYS}/{created['id']}"), 404, "not_found")
    assert_error(await admin.delete(f"{KEYS}/{uuid.uuid4()}"), 404, "not_found")
    assert_error(await admin.delete(f"{KEYS}/not-an-id"), 404, "not_found")


async def test_roles_on_admin_routes(app: FastAPI, admin: httpx.AsyncClient) -> None:
    sms = await new_key(admin, use_case_ids=None)
    boss = await new_key(admin, role="admin")
    async with client_for(app, sms["key"]) as http:
        assert_error(await http.get(KEYS), 403, "forbidden")
        assert_error(await http.post(KEYS, json={"name": "x", "role": "admin"}), 403, "forbidden")
    async with client_for(app, boss["key"]) as http:
        assert (await http.get(KEYS)).status_code == 200
        assert (await http.get("/v1/sms/")).status_code == 200
    async with client_for(app, "sl_sms_" + "A" * 43) as http:  # the form, but no such key
        assert_error(await http.get("/v1/sms/"), 401, "unauthorized")
    async with client_for(app, "sl_sms_broken") as http:
        assert_error(await http.get(KEYS), 401, "unauthorized")


async def test_a_scoped_key_sends_only_through_its_use_cases(
    app: FastAPI, admin: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    mine, theirs = await new_use_case(admin), await new_use_case(admin)
    created = await new_key(admin, use_case_ids=[mine])
    async with client_for(app, created["key"]) as http:
        outside = await http.post("/v1/sms/", json=send_body(use_case_id=theirs))
        assert_error(outside, 404, "use_case_not_found")
        # The very answer the worker gives for a use case that does not exist.
        assert outside.json()["detail"] == UseCaseNotFound().detail
        assert bridge.sent == []  # refused before anything is published
        inside = await http.post("/v1/sms/", json=send_body(use_case_id=mine))
        assert inside.status_code == 201, inside.text
    assert [s.use_case_id for s in bridge.sent] == [uuid.UUID(mine)]


async def test_a_scoped_key_reads_and_lists_only_its_use_cases(
    app: FastAPI, admin: httpx.AsyncClient, store: FakeStore
) -> None:
    mine, theirs = await new_use_case(admin), await new_use_case(admin)
    own, foreign = record_in(mine), record_in(theirs)
    store.records.update({own.id: own, foreign.id: foreign})
    created = await new_key(admin, use_case_ids=[mine])
    absent = uuid.uuid4()
    async with client_for(app, created["key"]) as http:
        assert (await http.get(f"/v1/sms/{own.id}")).status_code == 200
        hidden, missing = (
            await http.get(f"/v1/sms/{foreign.id}"),
            await http.get(f"/v1/sms/{absent}"),
        )
        assert_error(hidden, 404, "not_found")
        assert hidden.json()["detail"] == missing.json()["detail"].replace(
            str(absent), str(foreign.id)
        )
        listed = await http.get("/v1/sms/")
        assert [r["id"] for r in listed.json()["items"]] == [str(own.id)]
        assert (await http.get("/v1/sms/", params={"use_case_id": theirs})).json()["items"] == []
    assert store.listed[-1]["use_case_ids"] == frozenset({uuid.UUID(mine)})
    listed_all = await admin.get("/v1/sms/")  # a bootstrap key: every use case
    assert len(listed_all.json()["items"]) == 2 and store.listed[-1]["use_case_ids"] is None


async def test_idempotency_keys_are_per_api_key(
    app: FastAPI, admin: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    use_case = await new_use_case(admin)
    one = await new_key(admin, use_case_ids=[use_case])
    two = await new_key(admin, use_case_ids=[use_case])
    body, same = send_body(use_case_id=use_case), {"Idempotency-Key": "order-1"}
    for created in (one, two, one):
        async with client_for(app, created["key"]) as http:
            assert (await http.post("/v1/sms/", json=body, headers=same)).status_code == 201
    first, second, again = (s.request_id for s in bridge.sent)
    assert first == again and first != second


async def test_a_view_that_cannot_confirm_it_is_current_refuses_stored_keys_only(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, bridge: FakeBridge
) -> None:
    created = await new_key(admin, use_case_ids=None)
    bridge.config.confirmed_at = None  # the feed has lost the broker
    async with client_for(app, created["key"]) as http:
        assert_error(await http.get("/v1/sms/"), 503, "service_unavailable")
    assert (await client.get("/v1/sms/")).status_code == 200  # bootstrap keys need no view
