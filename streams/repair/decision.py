"""Status repair's rules, as pure functions: which records to check, when, and how
Twilio's answer becomes a callback.

A status callback can be lost for good (our webhook down longer than Twilio retries, a
proxy dropping it). A record still ``pending`` or ``sent`` ``SMSLANE_STATUS_REPAIR_AFTER_
SECONDS`` after its last change is fetched from Twilio; the answer goes through the same
state machine as a callback received at fetch time. A message Twilio still reports as not
final is checked again later, each wait twice the previous, up to :data:`MAX_CHECKS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.config import UseCase
from schemas.records import SmsStatus
from streams.sending.provider import TwilioMessage

#: Checks of one record at most (after the first wait: 1, 2, 4, 8, 16 times the wait).
MAX_CHECKS = 5


@dataclass(frozen=True)
class Checked:
    """How often a record was checked, and when it may be checked next."""

    checks: int
    next_at: datetime


def due(
    status: SmsStatus,
    quiet_since: datetime,
    checked: Checked | None,
    now: datetime,
    after: timedelta,
) -> bool:
    """Whether to ask Twilio about a record now; ``quiet_since`` is its last change, or its
    ``send_at`` when later (a scheduled message is not asked about before its time)."""
    if status.terminal or quiet_since + after > now:
        return False
    if checked is None:
        return True
    return checked.checks < MAX_CHECKS and checked.next_at <= now


def after_check(checked: Checked | None, now: datetime, after: timedelta) -> Checked:
    """The record was just asked about (or the fetch failed): when to ask again."""
    checks = 1 if checked is None else checked.checks + 1
    return Checked(checks, now + after * (2 ** (checks - 1)))


def account_to_ask(sent_through: str | None, use_case: UseCase | None) -> str | None:
    """The subaccount to fetch a message with: the one it was sent through, kept by the
    lifecycle; for a record kept before that was known, the one its use case names now
    (``None`` when the use case is gone)."""
    if sent_through is not None:
        return sent_through
    return use_case.account_sid if use_case is not None else None


def callback_params(message: TwilioMessage, account_sid: str) -> dict[str, str]:
    """The form fields of the status callback Twilio would have sent for ``message``."""
    params = {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "AccountSid": account_sid,
        "MessageStatus": message.status,
        "SmsStatus": message.status,
        "To": message.to,
    }
    if message.from_number:
        params["From"] = message.from_number
    if message.num_segments:
        params["NumSegments"] = message.num_segments
    if message.error_code is not None:
        params["ErrorCode"] = str(message.error_code)
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    return params
