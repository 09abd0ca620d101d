"""Status callbacks: signed, form-encoded POSTs sent in the background.

One message's callbacks go out one after the other; different messages' callbacks go out
concurrently, at most ``callback_max_concurrency`` at a time, over one shared ClientSession. A
failed attempt (connection error, timeout, 5xx) is retried a bounded number of times with a
doubling pause; nothing a callback target does can crash the simulator.

A ``#fragment`` on the StatusCallback URL is a Twilio connection override: it is removed from
the URL that is requested, and from the URL that is signed unless ``sign_url_fragment`` is
on; ``rc`` (retry count, 0-5) and ``rp`` (retry policy: ``ct``, ``rt``, ``4xx``, ``5xx`` or
``all``, comma-separated) are honoured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

from twilio_sim.config import SimConfig
from twilio_sim.models import API_VERSION, CallbackRecord, SimMessage
from twilio_sim.scenarios import Step

logger = logging.getLogger(__name__)

_DEFAULT_POLICY = frozenset({"ct", "rt", "5xx"})
_ALL_POLICY = frozenset({"ct", "rt", "4xx", "5xx"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message's callbacks go and how hard to try."""

    url: str
    """The URL requested: the StatusCallback without its fragment."""
    signed_url: str
    """The URL the signature is computed over: ``url``, or the StatusCallback as given."""
    retries: int
    policy: frozenset[str]
    """Failure kinds that are retried: ``ct`` (connection), ``rt`` (timeout), ``4xx``, ``5xx``."""
    validator: RequestValidator
    """Signs with the account's auth token, the key of ``X-Twilio-Signature``."""
    request_url: URL
    """``url`` as aiohttp requests it, byte for byte (no re-quoting)."""


def parse_target(
    raw_url: str, auth_token: str, default_retries: int, sign_fragment: bool = False
) -> Target:
    """Split a StatusCallback into the URL to call and its connection overrides;
    ``sign_fragment``: sign over ``raw_url`` whole instead of the URL called."""
    url, _, fragment = raw_url.partition("#")
    overrides = dict(part.split("=", 1) for part in fragment.split("&") if "=" in part)
    retries = default_retries
    if overrides.get("rc", "").isdigit():
        retries = min(int(overrides["rc"]), 5)
    policy = _DEFAULT_POLICY
    if "rp" in overrides:
        kinds = frozenset(kind.strip() for kind in overrides["rp"].split(","))
        policy = _ALL_POLICY if "all" in kinds else kinds & _ALL_POLICY
    return Target(
        url=url,
        signed_url=raw_url if sign_fragment else url,
        retries=retries,
        policy=policy,
        validator=RequestValidator(auth_token),
        request_url=URL(url, encoded=True),
    )


class CallbackForm:
    """A message's callback fields: the fixed ones are encoded once, per message."""

    __slots__ = ("_encoded", "_fixed")

    def __init__(self, message: SimMessage) -> None:
        self._fixed = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.sender,
            "MessageSid": message.sid,
            "NumSegments": str(message.num_segments),
            "SmsSid": message.sid,
            "To": message.to,
        }
        if message.messaging_service_sid is not None:
            self._fixed["MessagingServiceSid"] = message.messaging_service_sid
        self._encoded = urlencode(self._fixed)

    def render(self, step: Step) -> tuple[dict[str, str], bytes]:
        """The fields of the callback for ``step`` and its form-encoded body."""
        varying = {"MessageStatus": step.status, "SmsStatus": step.status}
        if step.error_code is not None:
            varying["ErrorCode"] = str(step.error_code)
        body = f"{self._encoded}&{urlencode(varying)}".encode()
        return {**self._fixed, **varying}, body


def callback_params(message: SimMessage, step: Step) -> dict[str, str]:
    """The form fields of one status callback."""
    return CallbackForm(message).render(step)[0]


class CallbackDispatcher:
    """Sends status callbacks; :meth:`wait_idle` waits until none is pending."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._semaphore = asyncio.Semaphore(config.callback_max_concurrency)
        self._timeout = aiohttp.ClientTimeout(total=config.callback_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def configure(self, config: SimConfig) -> None:
        """Use ``config`` from now on (callbacks in flight keep their old limits)."""
        if config.callback_max_concurrency != self._config.callback_max_concurrency:
            self._semaphore = asyncio.Semaphore(config.callback_max_concurrency)
        self._timeout = aiohttp.ClientTimeout(total=config.callback_timeout_s)
        self._config = config

    async def open(self) -> None:
        """Create the shared HTTP session (inside the running loop)."""
        self._semaphore = asyncio.Semaphore(self._config.callback_max_concurrency)
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            self._session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        """Cancel pending callbacks and close the session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def pending(self) -> int:
        """Messages whose callbacks are still being sent."""
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Return once every scheduled callback has been sent (or given up on)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def dispatch(
        self, message: SimMessage, steps: Sequence[Step], target: Target, delay: float
    ) -> None:
        """Send ``steps`` for ``message`` in the background, in order, ``delay`` s apart."""
        if steps:
            self._start(self._run(message, steps, target, delay))

    def withhold(
        self, message: SimMessage, steps: Sequence[Step], url: str | None, delay: float
    ) -> None:
        """Move ``message`` along ``steps`` in the background, ``delay`` s apart, sending no
        callback; each one is recorded as ``dropped`` when there was a ``url`` to send to."""
        if steps:
            self._start(self._advance_silently(message, steps, url, delay))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _advance_silently(
        self, message: SimMessage, steps: Sequence[Step], url: str | None, delay: float
    ) -> None:
        for step in steps:
            if delay > 0:
                await asyncio.sleep(delay)
            message.advance(step.status, step.error_code, time.time())
            if url is not None:
                message.callbacks.append(
                    CallbackRecord(
                        status=step.status,
                        error_code=step.error_code,
                        url=url,
                        idempotency_token=f"{message.sid}-{len(message.callbacks)}",
                        outcome="dropped",
                    )
                )
            logger.debug("status callback %s of %s withheld", step.status, message.sid)

    async def _run(
        self, message: SimMessage, steps: Sequence[Step], target: Target, delay: float
    ) -> None:
        try:
            form = CallbackForm(message)
            for step in steps:
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.send(message, step, target, form)
        except Exception:
            logger.exception("status callbacks of %s stopped", message.sid)

    async def send(
        self, message: SimMessage, step: Step, target: Target, form: CallbackForm | None = None
    ) -> CallbackRecord:
        """Send one callback now (retrying as configured); the record says how it went."""
        now = time.time()
        message.advance(step.status, step.error_code, now)
        record = CallbackRecord(
            status=step.status,
            error_code=step.error_code,
            url=target.url,
            idempotency_token=f"{message.sid}-{len(message.callbacks)}",
            sent_at=now,
        )
        message.callbacks.append(record)
        params, body = (form or CallbackForm(message)).render(step)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": record.idempotency_token,
            "X-Twilio-Signature": target.validator.compute_signature(target.signed_url, params),
        }
        await self._deliver(record, body, headers, target)
        return record

    async def _deliver(
        self, record: CallbackRecord, body: bytes, headers: dict[str, str], target: Target
    ) -> None:
        if self._session is None:
            raise RuntimeError("the callback dispatcher is not open")
        config = self._config
        timeout = self._timeout
        url = target.request_url
        kind = "ct"
        for attempt in range(target.retries + 1):
            if attempt:
                await asyncio.sleep(config.callback_retry_backoff_ms / 1000.0 * 2 ** (attempt - 1))
            record.attempts += 1
            try:
                async with (
                    self._semaphore,
                    self._session.post(url, data=body, headers=headers, timeout=timeout) as resp,
                ):
                    await resp.read()
                    status = resp.status
            except TimeoutError:
                kind, record.error = "rt", "timeout"
            except aiohttp.ClientError as exc:
                kind, record.error = "ct", f"{type(exc).__name__}: {exc}"
            else:
                record.http_status = status
                if status < 400:
                    record.outcome = "delivered"
                    return
                kind = "5xx" if status >= 500 else "4xx"
            if kind not in target.policy or attempt == target.retries:
                break
            logger.warning(
                "status callback %s of %s to %s failed (%s), retrying (%d/%d)",
                record.status,
                record.idempotency_token,
                target.url,
                record.error if kind in ("ct", "rt") else record.http_status,
                attempt + 1,
                target.retries,
            )
        record.outcome = "rejected" if kind == "4xx" else "failed"
        logger.warning(
            "status callback %s of %s to %s gave up after %d attempt(s): %s",
            record.status,
            record.idempotency_token,
            target.url,
            record.attempts,
            record.error if kind in ("ct", "rt") else record.http_status,
        )
