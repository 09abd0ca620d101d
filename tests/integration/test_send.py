"""POST /v1/sms/ end to end: real broker, worker, ingress, store and Twilio simulator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import create_use_case, sim_messages, unique_number
from tests.harness import Stack

pytestmark = pytest.mark.integration


async def send(
    client: httpx.AsyncClient, use_case_id: str, to: str, message: str = "Your code is 1234",
    **headers: str,
) -> httpx.Response:  # fmt: skip
    return await client.post(
        "/v1/sms/",
        json={"use_case_id": use_case_id, "to_phone_number": to, "message": message},
        headers=headers,
    )


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = dict(answer.json())
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_send_answers_the_pending_record_and_get_finds_it(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        to = unique_number()
        answer = await send(client, use_case["id"], to, "Hello")
        assert answer.status_code == 201, answer.text
        record = answer.json()
        assert set(record) == {
            "id", "use_case_id", "message_sid", "from_number", "to_number", "body",
            "num_segments", "status", "handed_off_at", "delivered_at", "errored_at",
            "error_code", "created_at", "updated_at",
            "send_at", "validity_period", "client_reference", "canceled_at",
        }  # fmt: skip
        assert record["status"] == "pending"
        assert [record[k] for k in ("send_at", "validity_period", "client_reference")] == [None] * 3
        assert record["message_sid"].startswith("SM") and len(record["message_sid"]) == 34
        assert record["from_number"] is None and record["num_segments"] is None
        assert (record["to_number"], record["body"]) == (to, "Hello")
        assert record["use_case_id"] == use_case["id"]
        got = await client.get(f"/v1/sms/{record['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["message_sid"] == record["message_sid"]
        created = await sim_messages(sim, to)
        assert len(created) == 1
        assert created[0]["sid"] == record["message_sid"]


async def test_use_case_not_found_deleted_and_inactive(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client:
        assert_error(
            await send(client, str(uuid.uuid4()), unique_number()), 404, "use_case_not_found"
        )
        deleted = await create_use_case(admin)
        assert (await admin.delete(f"/v1/admin/sms-use-cases/{deleted['id']}")).status_code == 204
        assert_error(await send(client, deleted["id"], unique_number()), 404, "use_case_not_found")
        assert (await admin.get(f"/v1/admin/sms-use-cases/{deleted['id']}")).status_code == 404
        inactive = await create_use_case(admin)
        patched = await admin.patch(
            f"/v1/admin/sms-use-cases/{inactive['id']}", json={"active": False}
        )
        assert patched.status_code == 200 and patched.json()["active"] is False
        assert_error(await send(client, inactive["id"], unique_number()), 404, "use_case_inactive")


async def test_pool_and_campaign_checks(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client:
        empty = await create_use_case(admin, senders=())
        assert_error(await send(client, empty["id"], unique_number()), 422, "no_sender_numbers")
        unverified = await create_use_case(admin, a2p_campaign_status="pending")
        assert_error(
            await send(client, unverified["id"], unique_number()), 422, "a2p_campaign_not_verified"
        )
        toll_free = await create_use_case(
            admin, a2p_campaign_status="none", senders=("+18885550100",), number_type="toll_free"
        )
        assert (await send(client, toll_free["id"], unique_number())).status_code == 201


async def test_destination_checks(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        landline = unique_number()
        configured = await sim.post("/_sim/config", json={"landline_numbers": [landline]})
        assert configured.status_code == 200, configured.text
        assert_error(await send(client, use_case["id"], landline), 422, "invalid_destination")
        assert_error(await send(client, use_case["id"], "+14150000000"), 422, "invalid_destination")
        opted = unique_number()
        put = await admin.put(f"/v1/admin/sms-use-cases/{use_case['id']}/opt-outs/%2B{opted[1:]}")
        assert put.status_code == 200, put.text
        assert_error(await send(client, use_case["id"], opted), 422, "destination_opted_out")
        gb = "+447911123456"
        assert_error(await send(client, use_case["id"], gb), 422, "region_not_permitted")
        for number in (landline, opted, gb):
            assert await sim_messages(sim, number) == []
        removed = await admin.delete(f"/v1/admin/sms-use-cases/{use_case['id']}/opt-outs/{opted}")
        assert removed.status_code == 204
        assert (await send(client, use_case["id"], opted)).status_code == 201


async def test_brand_suspended(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin, brand_status="suspended")
        assert_error(await send(client, use_case["id"], unique_number()), 422, "brand_suspended")


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", "invalid_destination"),  # Twilio 21211
        ("+15005550009", "invalid_destination"),  # Twilio 21614
        ("+15005550003", "region_not_permitted"),  # Twilio 21408
    ],
)
async def test_twilio_errors_map_to_the_contracts_codes(stack: Stack, to: str, code: str) -> None:
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        assert_error(await send(client, use_case["id"], to), 422, code)


async def test_twilio_21610_records_the_opt_out(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        to = "+15005550004"
        assert_error(await send(client, use_case["id"], to), 422, "destination_opted_out")
        calls = len(await sim_messages(sim, to))
        assert_error(await send(client, use_case["id"], to), 422, "destination_opted_out")
        assert len(await sim_messages(sim, to)) == calls, "the second send must not reach Twilio"


async def test_idempotency_key_replays_and_conflicts(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        to, key = unique_number(), str(uuid.uuid4())
        first = await send(client, use_case["id"], to, "Once", **{"Idempotency-Key": key})
        again = await send(client, use_case["id"], to, "Once", **{"Idempotency-Key": key})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert len(await sim_messages(sim, to)) == 1
        other = await send(client, use_case["id"], to, "Different", **{"Idempotency-Key": key})
        assert_error(other, 409, "idempotency_key_reused")
        concurrent = await asyncio.gather(
            *(send(client, use_case["id"], to, "Race", **{"Idempotency-Key": "k2" + key})
              for _ in range(5))
        )  # fmt: skip
        assert {a.status_code for a in concurrent} == {201}
        assert len({a.json()["id"] for a in concurrent}) == 1
        assert len(await sim_messages(sim, to)) == 2


async def test_a_retry_during_the_twilio_call_gets_the_first_answer(stack: Stack) -> None:
    """Same Idempotency-Key while the first request is still at Twilio (the worker takes
    further batches meanwhile): the retry waits for that answer; another body gets 409."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        to, key = unique_number(), str(uuid.uuid4())
        await sim.post("/_sim/config", json={"create_delay_ms": 1500})
        try:
            first = asyncio.create_task(
                send(client, use_case["id"], to, "Slow", **{"Idempotency-Key": key})
            )
            await asyncio.sleep(0.6)  # the first request is waiting for Twilio's answer
            again, other = await asyncio.gather(
                send(client, use_case["id"], to, "Slow", **{"Idempotency-Key": key}),
                send(client, use_case["id"], to, "Another body", **{"Idempotency-Key": key}),
            )
            answer = await first
        finally:
            await sim.post("/_sim/config", json={"create_delay_ms": 0})
        assert answer.status_code == again.status_code == 201, (answer.text, again.text)
        assert again.json() == answer.json()
        assert_error(other, 409, "idempotency_key_reused")
        assert len(await sim_messages(sim, to)) == 1


async def test_schema_violations_name_the_field(stack: Stack) -> None:
    async with stack.client() as client:
        use_case_id = str(uuid.uuid4())
        cases = [
            ({"to_phone_number": "+14155550123", "message": "x"}, "use_case_id"),
            ({"use_case_id": "nope", "to_phone_number": "+14155550123", "message": "x"},
             "use_case_id"),
            ({"use_case_id": use_case_id, "to_phone_number": "4155550123", "message": "x"},
             "to_phone_number"),
            ({"use_case_id": use_case_id, "to_phone_number": "+14155550123", "message": ""},
             "message"),
            ({"use_case_id": use_case_id, "to_phone_number": "+14155550123", "message": "x" * 1601},
             "message"),
        ]  # fmt: skip
        for body, field in cases:
            body = assert_error(await client.post("/v1/sms/", json=body), 422, "invalid_request")
            assert field in body["detail"]
        not_json = await client.post(
            "/v1/sms/", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert_error(not_json, 422, "invalid_request")
        huge = await client.post(
            "/v1/sms/", content=b"{" + b" " * 70_000 + b"}",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert_error(huge, 413, "payload_too_large")

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 8000

        streamed = await client.post(
            "/v1/sms/", content=chunked(), headers={"Content-Type": "application/json"}
        )
        assert_error(streamed, 413, "payload_too_large")
        extra = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case_id, "to_phone_number": "+14155550123",
                  "message": "x", "unknown_field": 1},
        )  # fmt: skip
        assert_error(extra, 404, "use_case_not_found")


async def test_authentication(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as anonymous, stack.client() as client:
        assert_error(await anonymous.post("/v1/sms/", json={}), 401, "unauthorized")
        assert_error(await anonymous.get("/v1/sms/"), 401, "unauthorized")
        wrong = await anonymous.get("/v1/sms/", headers={"Authorization": "Bearer wrong"})
        assert_error(wrong, 401, "unauthorized")
        forbidden = await client.post("/v1/admin/sms-use-cases", json={})
        assert_error(forbidden, 403, "forbidden")
        put = await client.put("/v1/admin/brands/x", json={"name": "x", "status": "verified"})
        assert_error(put, 403, "forbidden")


async def test_subaccount_token_is_never_returned(stack: Stack) -> None:
    async with stack.admin() as admin:
        sid = "AC" + uuid.uuid4().hex
        first = await admin.put(
            f"/v1/admin/twilio-subaccounts/{sid}", json={"auth_token": "s3cret-token"}
        )
        second = await admin.put(
            f"/v1/admin/twilio-subaccounts/{sid}", json={"auth_token": "s3cret-token2"}
        )
        assert (first.status_code, second.status_code) == (201, 200)
        assert "s3cret" not in first.text + second.text
