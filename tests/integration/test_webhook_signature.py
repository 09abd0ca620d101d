"""The status webhook's signature, end to end: repeated keys."""

from __future__ import annotations

import json
import uuid
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
    wait_for,
)

pytestmark = pytest.mark.integration


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
