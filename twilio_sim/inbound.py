"""Inbound messages: a person texts one of the account's numbers, Twilio calls the webhook.

``POST /_sim/inbound`` with ``{"from", "to", "body"}`` (and optionally ``account_sid`` and
``messaging_service_sid``; by default the only account, and the Messaging Service whose pool
holds ``to``) does what Twilio does with Advanced Opt-Out on:

- an opt-out keyword (``STOP``, ``STOPALL``, ``UNSUBSCRIBE``, ``CANCEL``, ``END``, ``QUIT``,
  ``REVOKE``, ``OPTOUT``: the whole message, trimmed, any case) unsubscribes ``from`` from
  that Messaging Service: its sends to them fail with 21610 from then on; an opt-in keyword
  (``START``, ``YES``, ``UNSTOP``) subscribes them again; ``HELP`` / ``INFO`` change nothing;
- the webhook gets ``OptOutType`` = ``STOP``, ``START`` or ``HELP`` for those keywords;
- the webhook is POSTed, form-encoded and signed with the account's auth token, to the
  configured ``inbound_url`` (none configured: nothing is sent).

The answer says what was sent and how the webhook answered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from twilio_sim.config import SimConfig
from twilio_sim.messaging import new_sid
from twilio_sim.models import API_VERSION
from twilio_sim.segments import count_segments

logger = logging.getLogger(__name__)

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


class InboundError(ValueError):
    """A ``POST /_sim/inbound`` body the simulator cannot act on (answered 400)."""


def opt_out_type(body: str) -> str | None:
    """Twilio's ``OptOutType`` for a message ``body``: ``STOP``, ``START``, ``HELP`` or None."""
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        return "STOP"
    if word in OPT_IN_WORDS:
        return "START"
    return "HELP" if word in HELP_WORDS else None


@dataclass(frozen=True)
class Inbound:
    """One text a person sends: who, to which number, through which account and service."""

    from_: str
    to: str
    body: str
    account_sid: str
    service_sid: str | None

    @classmethod
    def parse(cls, data: Mapping[str, Any], config: SimConfig) -> Inbound:
        """Read a ``POST /_sim/inbound`` body; raises :class:`InboundError`."""
        from_, to, body = (data.get(name) for name in ("from", "to", "body"))
        if not all(isinstance(value, str) and value for value in (from_, to)):
            raise InboundError('"from" and "to" are required (E.164 strings)')
        if not isinstance(body, str):
            raise InboundError('"body" is required (a string)')
        assert isinstance(from_, str) and isinstance(to, str)
        account = data.get("account_sid") or _only_account(config)
        if account not in config.accounts:
            raise InboundError(f"unknown account_sid {account!r}")
        service = data.get("messaging_service_sid") or _service_of(config, to)
        return cls(from_, to, body, str(account), service)

    def form(self, kind: str | None) -> dict[str, str]:
        """The webhook's fields, as Twilio sends them for an incoming SMS."""
        sid = new_sid()
        fields = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": self.body,
            "From": self.from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(count_segments(self.body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": self.to,
        }
        if self.service_sid is not None:
            fields["MessagingServiceSid"] = self.service_sid
        if kind is not None:
            fields["OptOutType"] = kind
        return fields


def _only_account(config: SimConfig) -> str | None:
    return next(iter(config.accounts)) if len(config.accounts) == 1 else None


def _service_of(config: SimConfig, to: str) -> str | None:
    return next((sid for sid, pool in config.services.items() if to in pool), None)


async def post_webhook(url: str, auth_token: str, form: dict[str, str]) -> dict[str, Any]:
    """POST ``form`` to ``url`` signed with ``auth_token``; the answer's status and body
    (``status`` None and ``error`` set when the webhook could not be reached)."""
    signature = RequestValidator(auth_token).compute_signature(url, form)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": signature,
    }
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=urlencode(form).encode(), headers=headers) as answer,
        ):
            text = await answer.text()
            return {"url": url, "status": answer.status, "body": text}
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("inbound webhook to %s failed: %s", url, exc)
        return {"url": url, "status": None, "error": f"{type(exc).__name__}: {exc}"}
