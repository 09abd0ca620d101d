"""The worker's one HTTP client for webhook deliveries.

One ``aiohttp`` session for the process; each attempt has a total timeout, follows no
redirect (a 3xx is a failed attempt) and reads at most :data:`RESPONSE_HEAD_BYTES` of the
answer, so an endless body or a receiver that never finishes cannot hold the worker. Unless
private URLs are allowed, the resolver refuses a host name that resolves to a private,
loopback or link-local address: the address checked is the address connected to, at every
attempt (DNS can change after registration).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from schemas.webhook_signature import HEADER
from schemas.webhooks import address_problem, url_problem

#: How much of a receiver's answer is read, and kept for the delivery log.
RESPONSE_HEAD_BYTES = 512
USER_AGENT = "smslane-webhooks/1"


class RefusedAddress(OSError):
    """A host name resolved to an address deliveries may not go to."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing private addresses (:func:`address_problem`)."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            problem = address_problem(result["host"])
            if problem is not None:
                raise RefusedAddress(f"{host} resolves to {problem}")
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class AttemptResult:
    """How one POST ended: ``ok`` for any 2xx within the timeout."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    response_head: str | None = None


class WebhookClient:
    """POSTs signed bodies; the session is made on first use, in the worker's loop."""

    def __init__(self, *, timeout_s: float, allow_private: bool) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self._allow_private else GuardedResolver()
            connector = aiohttp.TCPConnector(limit=0, resolver=resolver)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def post(self, url: str, body: bytes, signature: str) -> AttemptResult:
        """One attempt; every failure (refused URL, connection, timeout, non-2xx) is a result,
        never an exception."""
        problem = url_problem(url, allow_private=self._allow_private)
        if problem is not None:
            return AttemptResult(ok=False, error=f"url refused: {problem}")
        headers = {"Content-Type": "application/json", HEADER: signature}
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                head = await answer.content.read(RESPONSE_HEAD_BYTES)
                status = answer.status
        except RefusedAddress as exc:
            return AttemptResult(ok=False, error=f"address refused: {exc}")
        except TimeoutError:
            return AttemptResult(ok=False, error="timeout: no answer within the time allowed")
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            return AttemptResult(ok=False, error=_describe(exc))
        text = head.decode("utf-8", errors="replace")
        ok = 200 <= status < 300
        return AttemptResult(
            ok=ok, status_code=status, error=None if ok else f"HTTP {status}", response_head=text
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    """The error of a failed connection, for the delivery log (the cause of a DNS error)."""
    cause = exc.__cause__
    if isinstance(cause, RefusedAddress):
        return f"address refused: {cause}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
