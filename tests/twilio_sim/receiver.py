"""A small aiohttp server that receives status callbacks the way an application would."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict


async def serve_posts(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, str]:
    """An aiohttp server on a free loopback port answering every POST with ``handle`` (over
    TLS with ``ssl_context``); its runner (to clean up) and base URL."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    scheme = "http" if ssl_context is None else "https"
    return runner, f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"


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
        self._runner, self._base = await serve_posts(self._handle)
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
