"""Twilio, through the official ``twilio`` package, with retries and a Lookup cache.

The package is used as shipped: each subaccount gets a ``twilio.rest.Client`` on one shared
``AsyncTwilioHttpClient`` (one aiohttp session for the process), and the API and Lookup
domains are pointed at ``SMSLANE_TWILIO_API_BASE_URL`` / ``SMSLANE_TWILIO_LOOKUP_BASE_URL``
through the domains' ``base_url``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from schemas.config import Subaccount
from schemas.settings import Settings

log = logging.getLogger(__name__)
# The twilio package logs every request and response at INFO (six lines each); ours say
# what matters.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ProviderDown(Exception):
    """Twilio did not answer usefully after every attempt."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class ProviderRejection:
    """Twilio answered with an error for this request (4xx other than 429)."""

    status: int
    code: int | None
    message: str


class _LruTtl:
    """A bounded cache with expiry, for Lookup answers."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size, self.ttl_s = size, ttl_s
        self._data: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, str | None]:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        self._data.move_to_end(key)
        return True, hit[1]

    def put(self, key: str, value: str | None) -> None:
        self._data[key] = (time.monotonic() + self.ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


class TwilioGateway:
    """Create messages and look up line types, with bounded retries."""

    def __init__(
        self, settings: Settings, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ):
        self.settings = settings
        self._sleep = sleep
        self._http: AsyncTwilioHttpClient | None = None
        self._clients: dict[tuple[str, str], Client] = {}
        self._lookups = _LruTtl(size=100_000, ttl_s=24 * 3600)

    def _client(self, account: Subaccount) -> Client:
        key = (account.account_sid, account.auth_token)
        client = self._clients.get(key)
        if client is None:
            if self._http is None:
                self._http = AsyncTwilioHttpClient(timeout=self.settings.provider_timeout_seconds)
            client = Client(
                account.account_sid, account.auth_token, account.account_sid,
                http_client=self._http,
            )  # fmt: skip
            # Edge/region (TWILIO_EDGE, TWILIO_REGION) would rewrite the configured host.
            client.edge = client.region = None
            client.api.base_url = self.settings.twilio_api_base_url
            client.lookups.base_url = self.settings.twilio_lookup_base_url
            self._clients[key] = client
        return client

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        attempts = self.settings.provider_max_attempts
        reason = "no attempt made"
        for attempt in range(1, attempts + 1):
            try:
                return await call()
            except TwilioRestException as exc:
                if exc.status not in RETRYABLE_STATUS:
                    raise
                reason = f"HTTP {exc.status} from Twilio"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                delay = min(2.0, 0.1 * 2 ** (attempt - 1)) * (0.5 + random.random())
                log.warning(
                    "%s failed (%s), attempt %d/%d, retrying in %.2fs",
                    what, reason, attempt, attempts, delay,
                )  # fmt: skip
                await self._sleep(delay)
        log.error("%s failed after %d attempts: %s", what, attempts, reason)
        raise ProviderDown(reason, retry_after=5)

    async def create_message(
        self, account: Subaccount, messaging_service_sid: str, to: str, body: str
    ) -> str | ProviderRejection:
        """Create the message at Twilio; its SID, or Twilio's rejection."""
        client = self._client(account)

        async def call() -> Any:
            return await client.api.v2010.accounts(account.account_sid).messages.create_async(
                to=to,
                body=body,
                messaging_service_sid=messaging_service_sid,
                status_callback=self.settings.status_callback_url,
            )

        try:
            message = await self._with_retries(f"create message to {to[:-4]}****", call)
        except TwilioRestException as exc:
            return ProviderRejection(exc.status, _int(exc.code), str(exc.msg))
        return str(message.sid)

    async def line_type(self, account: Subaccount, number: str) -> str | None:
        """Lookup v2 line type of ``number`` (cached); None when Lookup has no answer."""
        hit, cached = self._lookups.get(number)
        if hit:
            return cached
        client = self._client(account)

        async def call() -> Any:
            return await client.lookups.v2.phone_numbers(number).fetch_async(
                fields="line_type_intelligence"
            )

        try:
            result = await self._with_retries("line type lookup", call)
        except TwilioRestException as exc:
            log.warning("Lookup refused %s****: HTTP %s code %s", number[:-4], exc.status, exc.code)
            return None
        info = result.line_type_intelligence or {}
        kind = info.get("type") if isinstance(info, dict) else None
        if result.valid is False:
            kind = "invalid"
        self._lookups.put(number, kind)
        return kind


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None
