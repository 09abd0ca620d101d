"""The status webhook's signature, end to end: repeated keys, and the connection-override
fragment smslane appends to every StatusCallback (signed over by Twilio, or not)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from tests.harness import AUTH_TOKEN, Stack
from tests.integration.test_lifecycle import (
    WEBHOOK,
    callback_params,
    send_with_scenario,
    settle,
    wait_for,
)

pytestmark = pytest.mark.integration


async def status_callback_of(stack: Stack, message_sid: str) -> str:
    """The StatusCallback smslane gave Twilio for this message, fragment included."""
    async with stack.sim_client() as sim:
        answer = await sim.get(f"/_sim/messages/{message_sid}")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status_callback"])


async def post_signed(
    stack: Stack, pairs: list[tuple[str, str]], signed_url: str, token: str = AUTH_TOKEN
) -> int:
    """POST ``pairs`` (repeated keys allowed, in this order), signed as Twilio signs them:
    over ``signed_url`` and every value of every key."""
    signature = RequestValidator(token).compute_signature(signed_url, MultiDict(pairs))
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10.0) as http:
        answer = await http.post(
            WEBHOOK,
            content=urlencode(pairs).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
    return answer.status_code


async def test_a_repeated_key_signed_over_all_its_values_is_applied(stack: Stack) -> None:
    sent = await send_with_scenario(stack, "none")  # the simulator sends no callback itself
    sid = sent["message_sid"]
    pairs = [
        *callback_params(sid, "delivered", From="+14155550100").items(),
        ("AddOns", '{"status":"successful"}'),
        ("AddOns", '{"status":"failed"}'),
    ]
    assert await post_signed(stack, pairs, f"{stack.base_url}{WEBHOOK}") == 204
    record = await wait_for(stack, sent["id"], lambda r: r["status"] == "delivered")
    assert record["from_number"] == "+14155550100"

    stored = [
        json.loads(message.value)
        for message in await stack.read_topic("sms.callbacks")
        if message.key.decode() == sid
    ]
    assert len(stored) == 1
    # The last value of a repeated key in ``params`` (as Starlette's form does), every value
    # of it in ``repeated``.
    assert stored[0]["params"]["AddOns"] == '{"status":"failed"}'
    assert stored[0]["repeated"] == {"AddOns": ['{"status":"successful"}', '{"status":"failed"}']}


async def test_a_repeated_key_with_one_value_dropped_is_refused(stack: Stack) -> None:
    sid = "SM" + uuid.uuid4().hex
    signed_pairs = [*callback_params(sid, "delivered").items(), ("Tag", "a"), ("Tag", "b")]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{stack.base_url}{WEBHOOK}", MultiDict(signed_pairs)
    )
    sent_pairs = [*callback_params(sid, "delivered").items(), ("Tag", "b")]
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10.0) as http:
        answer = await http.post(
            WEBHOOK, data=dict(sent_pairs), headers={"X-Twilio-Signature": signature}
        )
    assert answer.status_code == 403


@pytest.mark.parametrize("fragment", [False, True], ids=["without fragment", "with fragment"])
async def test_a_callback_signed_with_or_without_the_fragment_is_applied(
    stack: Stack, fragment: bool
) -> None:
    sent = await send_with_scenario(stack, "none")
    callback_url = await status_callback_of(stack, sent["message_sid"])
    bare, hash_sign, override = callback_url.partition("#")
    assert bare == f"{stack.base_url}{WEBHOOK}" and hash_sign and override, callback_url
    pairs = list(callback_params(sent["message_sid"], "sent", NumSegments="3").items())
    assert await post_signed(stack, pairs, callback_url if fragment else bare) == 204
    record = await wait_for(stack, sent["id"], lambda r: r["status"] == "sent")
    assert record["num_segments"] == 3


async def test_a_signature_over_another_fragment_or_token_is_refused(stack: Stack) -> None:
    sid = "SM" + uuid.uuid4().hex
    pairs = list(callback_params(sid, "delivered").items())
    url = f"{stack.base_url}{WEBHOOK}"
    assert await post_signed(stack, pairs, f"{url}#rc=5&rp=all") == 403
    assert await post_signed(stack, pairs, f"{url}#rc=3&rp=all", token="wrong") == 403


@pytest.mark.parametrize("sign_fragment", [False, True], ids=["sim default", "sim with fragment"])
async def test_simulator_callbacks_signed_either_way_reach_delivered(
    stack: Stack, sign_fragment: bool
) -> None:
    async with stack.sim_client() as sim:
        configured = await sim.post("/_sim/config", json={"sign_url_fragment": sign_fragment})
        assert configured.status_code == 200, configured.text
    try:
        sent = await send_with_scenario(stack, "delivered")
        await wait_for(stack, sent["id"], lambda r: r["status"] == "delivered")
        record: dict[str, Any] = await settle(stack, sent["id"], 0.5)
        assert record["delivered_at"] is not None
        async with stack.sim_client() as sim:
            message = (await sim.get(f"/_sim/messages/{sent['message_sid']}")).json()
        assert [c["http_status"] for c in message["callbacks"]] == [204, 204, 204], message
    finally:
        async with stack.sim_client() as sim:
            await sim.post("/_sim/config", json={"sign_url_fragment": False})
