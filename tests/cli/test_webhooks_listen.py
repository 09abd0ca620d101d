"""``smslane webhooks listen``: one line per delivery, the signature checked with --secret."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from schemas.webhook_signature import HEADER, sign
from smslane.cli import build_parser
from smslane.webhooks_cli import Listener, describe
from tests.twilio_sim.receiver import serve_posts

STATUS = {
    "id": "evt_1",
    "type": "sms.status",
    "created_at": "2026-12-07T02:00:00Z",
    "data": {"id": "r1", "status": "delivered", "version": 3},
}


def test_a_line_names_the_event_and_the_signature_verdict() -> None:
    body = json.dumps(STATUS).encode()
    now = time.time()
    header = sign(["whsec_a"], int(now), body)
    line = describe(body, header, "whsec_a", now)
    assert "evt_1 sms.status record r1 delivered v3 (signature ok)" in line
    assert "signature INVALID" in describe(body, header, "whsec_b", now)
    assert "unchecked" in describe(body, header, None, now)
    inbound = {"id": "evt_2", "type": "sms.inbound", "data": {"from_number": "+1", "body": "hi"}}
    assert "from +1: 'hi'" in describe(json.dumps(inbound).encode(), "", None, now)
    assert "not JSON" in describe(b"<html>", "", None, now)


def test_the_command_line_declares_listen() -> None:
    args = build_parser().parse_args(["webhooks", "listen", "--port", "9100", "--status", "503"])
    assert (args.port, args.status, args.secret, args.host) == (9100, 503, None, "127.0.0.1")


async def test_the_listener_prints_each_delivery_and_answers_its_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listener = Listener("whsec_a", 503)
    runner, base = await serve_posts(listener.handle)
    try:
        body = json.dumps(STATUS).encode()
        header = sign(["whsec_a"], int(time.time()), body)
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{base}/hooks", content=body, headers={HEADER: header})
        assert answer.status_code == 503
    finally:
        await runner.cleanup()
    assert "evt_1 sms.status record r1 delivered v3 (signature ok)" in capsys.readouterr().out
