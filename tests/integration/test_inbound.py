"""Inbound SMS end to end: the simulator's signed webhook, the ingress, the config topic, the
worker's next send, ``sms.inbound``, the sink and ``GET /v1/sms/inbound/``."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from smslane.processes import wait_until_async
from tests.factories import create_use_case, sim_messages, unique_number
from tests.harness import ACCOUNT_SID, AUTH_TOKEN, SENDERS, SERVICE_SID, Stack
from tests.integration.test_send import assert_error, send

pytestmark = pytest.mark.integration

INBOUND = "/v1/webhook/twilio/sms-inbound"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def text(stack: Stack, person: str, body: str, to: str = SENDERS[0]) -> dict[str, Any]:
    """``person`` texts ``body`` to ``to`` through the simulator; what it sent and the
    webhook's answer (asserted to be the empty TwiML)."""
    async with stack.sim_client() as sim:
        answer = await sim.post("/_sim/inbound", json={"from": person, "to": to, "body": body})
    assert answer.status_code == 200, answer.text
    sent: dict[str, Any] = answer.json()
    webhook = sent["webhook"]
    assert webhook is not None and webhook["status"] == 200, webhook
    assert webhook["body"] == EMPTY_TWIML
    return sent


async def opt_outs(admin: httpx.AsyncClient, use_case_id: str, number: str) -> list[dict[str, Any]]:
    answer = await admin.get(f"/v1/admin/sms-use-cases/{use_case_id}/opt-outs")
    assert answer.status_code == 200, answer.text
    return [item for item in answer.json()["items"] if item["phone_number"] == number]


def sources(items: list[dict[str, Any]]) -> set[str]:
    return {item["source"] for item in items}


async def post_signed(
    stack: Stack, form: dict[str, str], token: str = AUTH_TOKEN
) -> httpx.Response:
    """POST ``form`` to the inbound webhook signed as Twilio signs it (with ``token``)."""
    signature = RequestValidator(token).compute_signature(f"{stack.base_url}{INBOUND}", form)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10.0) as http:
        return await http.post(
            INBOUND,
            content=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )


def inbound_form(person: str, body: str, **fields: str) -> dict[str, str]:
    sid = "SM" + uuid.uuid4().hex
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessagingServiceSid": SERVICE_SID,
        "From": person,
        "To": SENDERS[0],
        "Body": body,
        "NumMedia": "0",
        **fields,
    }


async def listed(stack: Stack, count: int, **params: str) -> list[dict[str, Any]]:
    """``GET /v1/sms/inbound/`` with ``params`` once it lists ``count`` items."""
    async with stack.client() as client:

        async def page() -> list[dict[str, Any]] | None:
            answer = await client.get("/v1/sms/inbound/", params=params)
            assert answer.status_code == 200, answer.text
            items: list[dict[str, Any]] = answer.json()["items"]
            return items if len(items) >= count else None

        return await wait_until_async(page, 30, f"{count} inbound message(s) for {params}")


async def test_stop_refuses_the_next_send_without_twilio_and_start_restores_it(
    stack: Stack,
) -> None:
    person = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        other = await create_use_case(admin, name="Reminders")  # same Messaging Service
        assert (await send(client, use_case["id"], person)).status_code == 201
        await text(stack, person, " Stop ")
        for opted in (use_case, other):
            (item,) = await opt_outs(admin, opted["id"], person)
            assert (item["source"], item["keyword"]) == ("keyword", "STOP")
        assert_error(await send(client, use_case["id"], person), 422, "destination_opted_out")
        assert_error(await send(client, other["id"], person), 422, "destination_opted_out")
        assert len(await sim_messages(sim, person)) == 1, "Twilio must not be called"

        await text(stack, person, "START")
        assert await opt_outs(admin, use_case["id"], person) == []
        assert await opt_outs(admin, other["id"], person) == []
        assert (await send(client, use_case["id"], person)).status_code == 201
        assert len(await sim_messages(sim, person)) == 2


async def test_start_clears_an_opt_out_learnt_from_twilio_21610(stack: Stack) -> None:
    person = unique_number()
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        # The person opted out at Twilio while smslane did not hear of it.
        await stack.configure_sim(inbound_url=None)
        try:
            async with stack.sim_client() as sim:
                quiet = {"from": person, "to": SENDERS[0], "body": "STOP"}
                assert (await sim.post("/_sim/inbound", json=quiet)).json()["webhook"] is None
        finally:
            await stack.configure_sim(inbound_url=stack.inbound_url)
        assert_error(await send(client, use_case["id"], person), 422, "destination_opted_out")

        async def learnt() -> bool:  # the worker's record reaches this ingress's view
            return sources(await opt_outs(admin, use_case["id"], person)) == {"twilio_21610"}

        await wait_until_async(learnt, 10.0, "the 21610 opt-out in the admin list")

        await text(stack, person, "unstop")
        assert await opt_outs(admin, use_case["id"], person) == []
        assert (await send(client, use_case["id"], person)).status_code == 201


async def test_an_admin_opt_out_outlives_start_until_the_admin_removes_it(stack: Stack) -> None:
    person = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        path = f"/v1/admin/sms-use-cases/{use_case['id']}/opt-outs/{person}"
        assert (await admin.put(path)).status_code == 200
        await text(stack, person, "QUIT")
        assert sources(await opt_outs(admin, use_case["id"], person)) == {"admin", "keyword"}
        await text(stack, person, "yes")
        assert sources(await opt_outs(admin, use_case["id"], person)) == {"admin"}
        assert_error(await send(client, use_case["id"], person), 422, "destination_opted_out")
        assert await sim_messages(sim, person) == []

        assert (await admin.delete(path)).status_code == 204
        assert await opt_outs(admin, use_case["id"], person) == []
        assert (await send(client, use_case["id"], person)).status_code == 201


async def test_help_and_other_messages_change_nothing(stack: Stack) -> None:
    person = unique_number()
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        for body in ("HELP", "info", "stop it please"):
            await text(stack, person, body)
        assert await opt_outs(admin, use_case["id"], person) == []
        assert (await send(client, use_case["id"], person)).status_code == 201


async def test_an_inbound_message_is_listed_and_published_once(stack: Stack) -> None:
    person = unique_number()
    async with stack.admin() as admin:
        await create_use_case(admin)
    form = inbound_form(person, "Running late, see you at 5")
    for _ in range(2):  # Twilio retries a webhook: the same message again
        answer = await post_signed(stack, form)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.text == EMPTY_TWIML
    (item,) = await listed(stack, 1, from_number=person)
    assert set(item) == {
        "id", "use_case_id", "message_sid", "account_sid", "messaging_service_sid",
        "from_number", "to_number", "body", "received_at",
    }  # fmt: skip
    assert (item["message_sid"], item["account_sid"]) == (form["MessageSid"], ACCOUNT_SID)
    assert (item["from_number"], item["to_number"]) == (person, SENDERS[0])
    assert (item["body"], item["messaging_service_sid"]) == (form["Body"], SERVICE_SID)
    assert item["use_case_id"] is not None
    (by_use_case,) = await listed(stack, 1, from_number=person, use_case_id=item["use_case_id"])
    assert by_use_case == item
    async with stack.client() as client:
        after = {"from_number": person, "created_after": item["received_at"]}
        later = await client.get("/v1/sms/inbound/", params=after)
    assert later.status_code == 200 and later.json()["items"] == []

    published = [
        json.loads(record.value)
        for record in await stack.read_topic("sms.inbound")
        if record.key == person.encode()
    ]
    assert len(published) == 2 and {p["id"] for p in published} == {item["id"]}
    assert published[0]["version"] == 1 and published[0]["keyword"] is None


async def test_inbound_pages_newest_first(stack: Stack) -> None:
    person = unique_number()
    for n in range(3):
        assert (await post_signed(stack, inbound_form(person, f"message {n}"))).status_code == 200
    first = await listed(stack, 2, from_number=person, limit="2")
    assert [i["body"] for i in first] == ["message 2", "message 1"]
    async with stack.client() as client:
        page = await client.get("/v1/sms/inbound/", params={"from_number": person, "limit": 2})
        cursor = page.json()["next_cursor"]
        assert cursor
        rest = await client.get(
            "/v1/sms/inbound/", params={"from_number": person, "limit": 2, "cursor": cursor}
        )
        assert [i["body"] for i in rest.json()["items"]] == ["message 0"]
        assert rest.json()["next_cursor"] is None
        bad = await client.get("/v1/sms/inbound/", params={"cursor": "nope"})
        assert_error(bad, 422, "invalid_request")


async def test_an_unknown_messaging_service_is_stored_without_opt_out(stack: Stack) -> None:
    person = unique_number()
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        form = inbound_form(person, "STOP", MessagingServiceSid="MG" + uuid.uuid4().hex)
        assert (await post_signed(stack, form)).status_code == 200
        (item,) = await listed(stack, 1, from_number=person)
        assert item["use_case_id"] is None and item["body"] == "STOP"
        assert await opt_outs(admin, use_case["id"], person) == []
        assert (await send(client, use_case["id"], person)).status_code == 201


async def test_a_bad_signature_or_account_is_refused_and_nothing_is_stored(stack: Stack) -> None:
    person = unique_number()
    async with stack.admin() as admin:
        use_case = await create_use_case(admin)
    form = inbound_form(person, "STOP")
    assert (await post_signed(stack, form, token="not-the-token")).status_code == 403
    unknown = {**form, "AccountSid": "AC" + "9" * 32}
    assert (await post_signed(stack, unknown)).status_code == 403
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        unsigned = await http.post(INBOUND, data=form)
    assert unsigned.status_code == 403
    assert unsigned.json()["code"] == "invalid_signature"
    missing = inbound_form(person, "hello")
    del missing["Body"]
    assert (await post_signed(stack, missing)).status_code == 200  # dropped, logged
    async with stack.admin() as admin, stack.client() as client:
        assert await opt_outs(admin, use_case["id"], person) == []
        assert (await send(client, use_case["id"], person)).status_code == 201
    assert not [r for r in await stack.read_topic("sms.inbound") if r.key == person.encode()]


async def test_opt_outs_of_an_unknown_use_case_is_a_404(stack: Stack) -> None:
    async with stack.admin() as admin:
        answer = await admin.get(f"/v1/admin/sms-use-cases/{uuid.uuid4()}/opt-outs")
    assert_error(answer, 404, "use_case_not_found")
