"""The worker's webhook HTTP client against misbehaving receivers on loopback: every kind of
failure is a failed attempt (a result, never an exception, never a stuck worker)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp.abc
import pytest
from aiohttp import web
from aiohttp.abc import ResolveResult

from streams.webhooks.http import (
    RESPONSE_HEAD_BYTES,
    GuardedResolver,
    RefusedAddress,
    WebhookClient,
)
from tests.twilio_sim.receiver import serve_posts


async def answer(request: web.Request) -> web.StreamResponse:
    """Behaves as the request's path says."""
    path = request.path
    if path == "/ok":
        return web.Response(status=204)
    if path == "/redirect":
        raise web.HTTPFound("/ok")
    if path == "/slow":
        await asyncio.sleep(5)
        return web.Response(status=200)
    if path == "/endless":
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        for _ in range(10_000):
            await response.write(b"x" * 1024)
        return response
    if path == "/close":
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=200)
    return web.Response(status=500, text="broken " * 200)


@pytest.fixture
async def base() -> AsyncIterator[str]:
    runner, url = await serve_posts(answer)
    yield url
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    made = WebhookClient(timeout_s=1.0, allow_private=True)
    yield made
    await made.close()


async def test_a_2xx_is_success(client: WebhookClient, base: str) -> None:
    result = await client.post(f"{base}/ok", b"{}", "t=1,v1=x")
    assert result.ok and result.status_code == 204


async def test_a_redirect_is_not_followed_and_fails(client: WebhookClient, base: str) -> None:
    result = await client.post(f"{base}/redirect", b"{}", "t=1,v1=x")
    assert not result.ok and result.status_code == 302


async def test_a_5xx_fails_with_the_first_bytes_of_the_answer(
    client: WebhookClient, base: str
) -> None:
    result = await client.post(f"{base}/broken", b"{}", "t=1,v1=x")
    assert not result.ok and result.status_code == 500 and result.error == "HTTP 500"
    assert result.response_head is not None
    assert result.response_head.startswith("broken") and len(result.response_head) <= 512


async def test_a_timeout_an_endless_body_and_a_closed_connection_fail(
    client: WebhookClient, base: str
) -> None:
    slow = await client.post(f"{base}/slow", b"{}", "t=1,v1=x")
    assert not slow.ok and slow.error is not None and "timeout" in slow.error
    endless = await client.post(f"{base}/endless", b"{}", "t=1,v1=x")
    assert endless.ok and endless.response_head == "x" * RESPONSE_HEAD_BYTES
    closed = await client.post(f"{base}/close", b"{}", "t=1,v1=x")
    assert not closed.ok and closed.status_code is None and closed.error


async def test_private_addresses_are_refused_at_delivery_without_the_setting(base: str) -> None:
    guarded = WebhookClient(timeout_s=1.0, allow_private=False)
    try:
        port = base.rsplit(":", 1)[1]
        literal = await guarded.post(f"https://127.0.0.1:{port}/ok", b"{}", "t=1,v1=x")
        assert not literal.ok and literal.error is not None and "loopback" in literal.error
        # A name (not "localhost" itself) that resolves to a loopback address here:
        name = socket.gethostname()
        if socket.gethostbyname(name).startswith("127."):
            named = await guarded.post(f"https://{name}:{port}/ok", b"{}", "t=1,v1=x")
            assert not named.ok and named.error is not None
            assert "address refused" in named.error and "loopback" in named.error
        plain = await guarded.post(f"{base}/ok", b"{}", "t=1,v1=x")
        assert not plain.ok and plain.error is not None and "https" in plain.error
    finally:
        await guarded.close()


class _Resolves(aiohttp.abc.AbstractResolver):
    """A resolver that answers ``address`` for every name."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("address", "why"), [("10.1.2.3", "private"), ("169.254.169.254", "link-local")]
)
async def test_the_resolver_refuses_names_resolving_to_private_addresses(
    address: str, why: str
) -> None:
    guard = GuardedResolver()
    guard._inner = _Resolves(address)
    with pytest.raises(RefusedAddress, match=why):
        await guard.resolve("hooks.example.com", 443)
    guard._inner = _Resolves("93.184.216.34")
    (found,) = await guard.resolve("hooks.example.com", 443)
    assert found["host"] == "93.184.216.34"
    await guard.close()


async def test_a_name_that_does_not_resolve_fails(client: WebhookClient) -> None:
    result = await client.post("https://nowhere.invalid/hook", b"{}", "t=1,v1=x")
    assert not result.ok and result.status_code is None and result.error
