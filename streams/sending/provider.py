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
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from schemas.config import Subaccount
from schemas.settings import Settings
from streams.metrics import timed_provider_call

log = logging.getLogger(__name__)
# The twilio package logs every request and response at INFO (six lines each); ours say
# what matters.
for _name in ("twilio.http_client", "twilio.async_http_client"):
    logging.getLogger(_name).setLevel(logging.WARNING)

T = TypeVar("T")

#: Answers after which Twilio has certainly not created anything: safe to call again.
NOT_PROCESSED_STATUS = frozenset({429, 503})
#: Answers that may come after the work was done: safe to repeat only a read (Lookup).
MAYBE_PROCESSED_STATUS = frozenset({500, 502, 504})


class ProviderDown(Exception):
    """Twilio did not answer usefully after every attempt."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ProviderMaybeSent(ProviderDown):
    """A create call failed in a way that does not tell whether Twilio created the message
    (a timeout after the request went out, a dropped connection, a 500/502/504); it is not
    repeated, so that the message is never sent twice."""


@dataclass(frozen=True)
class TwilioMessage:
    """The fields of a Twilio Message resource that reconciliation and repair read."""

    sid: str
    to: str
    body: str
    messaging_service_sid: str | None
    status: str
    date_created: datetime | None
    error_code: int | None = None
    from_number: str | None = None
    num_segments: str | None = None

    @classmethod
    def of(cls, message: Any) -> TwilioMessage:
        """From a ``twilio`` ``MessageInstance``."""
        return cls(
            sid=str(message.sid),
            to=str(message.to),
            body=str(message.body or ""),
            messaging_service_sid=message.messaging_service_sid,
            status=str(message.status),
            date_created=message.date_created,
            error_code=_int(message.error_code),
            from_number=message.from_,
            num_segments=None if message.num_segments is None else str(message.num_segments),
        )


@dataclass(frozen=True)
class Schedule:
    """The create call's scheduling parameters: ``SendAt`` and ``ValidityPeriod``."""

    send_at: datetime | None = None
    validity_period: int | None = None

    def create_params(self) -> dict[str, Any]:
        """The keyword arguments of ``messages.create_async`` (none when both are unset)."""
        params: dict[str, Any] = {}
        if self.send_at is not None:
            params["schedule_type"] = "fixed"
            params["send_at"] = self.send_at
        if self.validity_period is not None:
            params["validity_period"] = self.validity_period
        return params


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

    async def _with_retries(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        *,
        idempotent: bool,
        deadline: float | None = None,
    ) -> T:
        """Call with a timeout per attempt and bounded, jittered exponential backoff.

        Only failures after which Twilio certainly did nothing are retried for a
        non-idempotent call (connection refused, 429, 503); other failures of such a call
        raise :class:`ProviderMaybeSent`. ``deadline`` (monotonic) bounds the whole.
        """
        attempts = self.settings.provider_max_attempts
        reason = "no attempt made"
        for attempt in range(1, attempts + 1):
            timeout = self._attempt_timeout(deadline)
            if timeout <= 0:
                reason = f"out of time before attempt {attempt}"
                break
            try:
                return await asyncio.wait_for(call(), timeout)
            except TwilioRestException as exc:
                reason = f"HTTP {exc.status} from Twilio"
                if exc.status in MAYBE_PROCESSED_STATUS and not idempotent:
                    raise ProviderMaybeSent(reason, retry_after=60) from exc
                if exc.status not in NOT_PROCESSED_STATUS | MAYBE_PROCESSED_STATUS:
                    raise
            except aiohttp.ClientConnectorError as exc:
                reason = f"cannot connect: {exc}"  # nothing was sent
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if not idempotent:
                    raise ProviderMaybeSent(reason, retry_after=60) from exc
            if attempt == attempts:
                break
            delay = min(2.0, 0.1 * 2 ** (attempt - 1)) * (0.5 + random.random())
            if deadline is not None and time.monotonic() + delay >= deadline:
                reason += "; no time left for another attempt"
                break
            log.warning(
                "%s failed (%s), attempt %d/%d, retrying in %.2fs",
                what, reason, attempt, attempts, delay,
            )  # fmt: skip
            await self._sleep(delay)
        log.error("%s failed: %s", what, reason)
        raise ProviderDown(reason, retry_after=5)

    def _attempt_timeout(self, deadline: float | None) -> float:
        """One attempt's timeout: the setting, or less when the deadline comes first."""
        timeout = self.settings.provider_timeout_seconds
        if deadline is None:
            return timeout
        return min(timeout, deadline - time.monotonic())

    async def create_message(
        self,
        account: Subaccount,
        messaging_service_sid: str,
        to: str,
        body: str,
        *,
        deadline: float | None = None,
        schedule: Schedule | None = None,
    ) -> str | ProviderRejection:
        """Create the message at Twilio; its SID, or Twilio's rejection. ``schedule``: send
        it later (Twilio's ``ScheduleType=fixed``) and/or with a ``ValidityPeriod``.

        Raises :class:`ProviderDown` (nothing was created) or :class:`ProviderMaybeSent`.
        """
        client = self._client(account)
        extra = (schedule or Schedule()).create_params()

        async def call() -> Any:
            return await client.api.v2010.accounts(account.account_sid).messages.create_async(
                to=to,
                body=body,
                messaging_service_sid=messaging_service_sid,
                # Twilio's connection overrides: retry a callback our webhook could not
                # store (503) up to 3 times.
                status_callback=self.settings.status_callback_with_overrides,
                **extra,
            )

        try:
            message = await self._with_retries(
                f"create message to {to[:-4]}****",
                timed_provider_call("create_message", call),
                idempotent=False,
                deadline=deadline,
            )
        except TwilioRestException as exc:
            return ProviderRejection(exc.status, _int(exc.code), str(exc.msg))
        return str(message.sid)

    async def cancel_message(
        self, account: Subaccount, sid: str
    ) -> TwilioMessage | ProviderRejection:
        """Cancel the scheduled message ``sid`` (``Status=canceled``): Twilio's message after
        it, or its rejection (30409: no longer scheduled). Repeating it is harmless, so any
        failure is retried like a read; :class:`ProviderDown` after the last attempt means
        the cancel may or may not have happened (ask Twilio with :meth:`fetch_message`)."""
        client = self._client(account)

        async def call() -> Any:
            context = client.api.v2010.accounts(account.account_sid).messages(sid)
            return await context.update_async(status="canceled")

        try:
            message = await self._with_retries(
                f"cancel message {sid}", timed_provider_call("cancel_message", call),
                idempotent=True,
            )  # fmt: skip
        except TwilioRestException as exc:
            return ProviderRejection(exc.status, _int(exc.code), str(exc.msg))
        return TwilioMessage.of(message)

    async def recent_messages(
        self, account: Subaccount, to: str, since: datetime, *, limit: int = 200
    ) -> list[TwilioMessage]:
        """The subaccount's messages to ``to`` created at or after ``since``, newest first.

        Twilio lists newest first; paging stops at the first older message (or ``limit``).
        ``DateSent`` is not used as a filter: it is empty until a message is sent, and only
        day-precise. Raises :class:`ProviderDown` when Twilio cannot answer.
        """
        client = self._client(account)

        async def call() -> list[TwilioMessage]:
            found: list[TwilioMessage] = []
            messages = client.api.v2010.accounts(account.account_sid).messages
            async for message in await messages.stream_async(to=to, page_size=50, limit=limit):
                if message.date_created is not None and message.date_created < since:
                    break
                found.append(TwilioMessage.of(message))
            return found

        try:
            return await self._with_retries(
                f"list messages to {to[:-4]}****",
                timed_provider_call("list_messages", call),
                idempotent=True,
            )
        except TwilioRestException as exc:
            raise ProviderDown(f"HTTP {exc.status} from Twilio", retry_after=30) from exc

    async def fetch_message(self, account: Subaccount, sid: str) -> TwilioMessage | None:
        """The message ``sid`` as Twilio has it now; None when Twilio does not know it."""
        client = self._client(account)

        async def call() -> Any:
            return await client.api.v2010.accounts(account.account_sid).messages(sid).fetch_async()

        try:
            message = await self._with_retries(
                f"fetch message {sid}", timed_provider_call("fetch_message", call),
                idempotent=True,
            )  # fmt: skip
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise ProviderDown(f"HTTP {exc.status} from Twilio", retry_after=30) from exc
        return TwilioMessage.of(message)

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
            result = await self._with_retries(
                "line type lookup", timed_provider_call("line_type_lookup", call), idempotent=True
            )
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
