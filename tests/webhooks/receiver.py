"""A client service's webhook receiver for tests: an aiohttp server on loopback that checks
every delivery's signature and can fail the first attempts of each event."""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from schemas.webhook_signature import HEADER, verify
from tests.twilio_sim.receiver import serve_posts


@dataclass(frozen=True)
class Delivery:
    """One request as the receiver saw it."""

    body: dict[str, Any]
    signature: str
    raw: bytes
    answered: int

    @property
    def event_id(self) -> str:
        return str(self.body["id"])

    def signed_by(self, secret: str) -> bool:
        return verify(self.signature, self.raw, secret, now=time.time())


class Receiver:
    """Records every POST; answers ``fail_first`` attempts of each event with 500."""

    def __init__(self, *, fail_first: int = 0, always: int | None = None) -> None:
        self.received: list[Delivery] = []
        self.fail_first = fail_first
        #: Answer every request with this status (a dead endpoint: 503).
        self.always = always
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Receiver:
        self._runner, base = await serve_posts(self._handle, ssl_context)
        self.url = f"{base}/hooks"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        earlier = sum(1 for d in self.received if d.event_id == body["id"])
        status = self.always or (500 if earlier < self.fail_first else 200)
        signature = request.headers.get(HEADER, "")
        self.received.append(Delivery(body, signature, raw, status))
        return web.Response(status=status, text="ok" if status == 200 else "try later")

    def events(self, event_type: str | None = None, *, ok: bool = True) -> list[Delivery]:
        """Deliveries of ``event_type`` (all types when None), the answered-200 ones only
        when ``ok``."""
        return [
            d
            for d in self.received
            if (event_type is None or d.body["type"] == event_type)
            and (not ok or d.answered == 200)
        ]

    def attempts_of(self, event_id: str) -> list[Delivery]:
        return [d for d in self.received if d.event_id == event_id]
