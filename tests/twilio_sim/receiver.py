"""A small aiohttp server that receives status callbacks the way an application would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict


@dataclass(frozen=True)
class Received:
    """One callback as the receiver saw it."""

    url: str
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def status(self) -> str:
        return self.form["MessageStatus"]


class CallbackReceiver:
    """Records every POST; can answer a few of them with an error status, or slowly."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.failures: list[int] = []
        """HTTP statuses to answer the next requests with, in order (then 204)."""
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self._base = ""
        self._changed = asyncio.Event()

    async def start(self) -> CallbackReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/status") -> str:
        return self._base + path

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            form = MultiDict(await request.post())
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self.received.append(
                Received(
                    url=str(request.url),
                    headers=dict(request.headers),
                    form={key: str(value) for key, value in form.items()},
                )
            )
            self._changed.set()
            status = self.failures.pop(0) if self.failures else 204
            return web.Response(status=status)
        finally:
            self.in_flight -= 1

    def statuses(self, sid: str | None = None) -> list[str]:
        """``MessageStatus`` of every callback received (for one message when ``sid``)."""
        return [r.status for r in self.received if sid is None or r.form["MessageSid"] == sid]
