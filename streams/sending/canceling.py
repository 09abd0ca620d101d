"""Canceling a scheduled message: Twilio's cancel, the change published, the answer.

A :class:`~schemas.events.CancelRequest` arrives on ``sms.send-requests`` (from
``POST /v1/sms/{id}/cancel``, or from smslane itself when a policy change reaches a scheduled
message). :class:`Canceler` asks Twilio to cancel (``Status=canceled``) and publishes what
Twilio then reports to ``sms.callbacks``, keyed by the message SID, as the callback Twilio
would have sent: the lifecycle agent applies it through the same state machine as any
callback, so the record turns ``canceled`` (with ``canceled_at``) in a new version on
``sms.status``. The answer goes back to the waiting ingress like a send's.

When Twilio's answer is lost, the message is fetched at once; when that fails too, it is
fetched again as repair does (each wait twice the last, up to repair's number of checks)
until Twilio says where it is, which is then published the same way: the record and Twilio
never stay apart.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feeds.config import ConfigView
from schemas.config import Subaccount
from schemas.errors import NotCancelable, ProviderUnavailable, SmslaneError
from schemas.events import CancelRequest, ErrorBody, RawCallback, SendReply
from schemas.records import SmsRecord, SmsStatus
from streams import metrics
from streams.repair import decision as repair
from streams.sending.provider import (
    ProviderDown,
    TwilioGateway,
    TwilioMessage,
)

log = logging.getLogger(__name__)

#: Twilio's error for a message that is no longer scheduled.
NOT_SCHEDULED_CODE = 30409

#: Publishes a callback (keyed by SID) to ``sms.callbacks``.
PublishCallback = Callable[[str, RawCallback], Awaitable[None]]


@dataclass(frozen=True)
class Canceled:
    """Twilio has the message canceled: the record as the lifecycle will make it."""

    record: SmsRecord


def answer_of(
    request: CancelRequest, found: TwilioMessage | None, now: datetime
) -> Canceled | SmslaneError:
    """What a cancel answers once Twilio has said where the message is (``found``; None
    when it could not be asked): 200 with the canceled record, 409, or 503."""
    if found is None:
        return ProviderUnavailable(
            "Twilio could not be reached to cancel the message; it is still scheduled. "
            "Retry later.",
            retry_after=30,
        )
    status = found.status.lower()
    if status == "canceled":
        record = request.record
        if record.status is not SmsStatus.CANCELED:
            record = record.model_copy(
                update={"status": SmsStatus.CANCELED, "canceled_at": now, "updated_at": now}
            )
        return Canceled(record)
    if status == "scheduled":
        return ProviderUnavailable(
            "Twilio did not cancel the message; it is still scheduled. Retry later.",
            retry_after=30,
        )
    return NotCancelable(f"The message is no longer scheduled: Twilio reports it {status}.")


def reply_of(request: CancelRequest, answer: Canceled | SmslaneError) -> SendReply:
    """The answer on the reply topic (keyed and correlated like a send's)."""
    if isinstance(answer, Canceled):
        return SendReply(
            correlation_id=request.correlation_id, request_id=request.record.id,
            status_code=200, record=answer.record,
        )  # fmt: skip
    return SendReply(
        correlation_id=request.correlation_id,
        request_id=request.record.id,
        status_code=answer.status_code,
        error=ErrorBody(detail=answer.detail, code=answer.code),
        retry_after=answer.retry_after,
    )


class Canceler:
    """One cancel, one method per step: call Twilio, find out, publish, answer."""

    def __init__(
        self,
        config: ConfigView,
        gateway: TwilioGateway,
        publish: PublishCallback,
        repair_after: timedelta,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config, self.gateway, self.publish = config, gateway, publish
        self.repair_after = repair_after
        self._sleep = sleep
        self._following: set[asyncio.Task[None]] = set()

    async def cancel(self, request: CancelRequest) -> SendReply:
        """Cancel at Twilio and answer; never raises for a provider failure."""
        record = request.record
        account = self._account(record)
        if account is None:
            answer: Canceled | SmslaneError = ProviderUnavailable(
                "The message's Twilio subaccount is not configured, so it cannot be canceled."
            )
        else:
            found = await self._cancel_at_twilio(account, record.message_sid)
            # One time for the answer and the callback: the record the lifecycle makes of
            # it has the canceled_at this answer shows.
            now = _now()
            answer = answer_of(request, found, now)
            if found is not None:
                await self._publish(account, found, now)
        self._log(request, answer)
        return reply_of(request, answer)

    async def _cancel_at_twilio(self, account: Subaccount, sid: str) -> TwilioMessage | None:
        """Where the message is after the cancel call, or None if Twilio cannot tell now
        (then it is followed up as repair does)."""
        try:
            result = await self.gateway.cancel_message(account, sid)
        except ProviderDown as exc:
            log.warning("cancel of %s: Twilio's answer lost (%s); asking Twilio", sid, exc.reason)
            return await self._fetch_or_follow(account, sid)
        if isinstance(result, TwilioMessage):
            return result
        if result.code != NOT_SCHEDULED_CODE:
            log.error("cancel of %s refused: HTTP %s code %s", sid, result.status, result.code)
        return await self._fetch_or_follow(account, sid)

    async def _fetch_or_follow(self, account: Subaccount, sid: str) -> TwilioMessage | None:
        try:
            return await self.gateway.fetch_message(account, sid)
        except ProviderDown as exc:
            log.warning("cancel of %s: Twilio cannot be asked (%s); following it up", sid, exc)
            task = asyncio.ensure_future(self.follow_up(account, sid))
            self._following.add(task)
            task.add_done_callback(self._following.discard)
            return None

    async def follow_up(self, account: Subaccount, sid: str) -> None:
        """Fetch ``sid`` as repair does (waits doubling from the repair wait) until Twilio
        answers, and publish what it says."""
        for check in range(repair.MAX_CHECKS):
            await self._sleep((self.repair_after * 2**check).total_seconds())
            try:
                found = await self.gateway.fetch_message(account, sid)
            except ProviderDown:
                continue
            if found is not None:
                await self._publish(account, found, _now())
            return
        log.error("cancel of %s: Twilio never answered; repair checks it after send_at", sid)

    async def _publish(
        self, account: Subaccount, message: TwilioMessage, received_at: datetime
    ) -> None:
        """Twilio's view of the message, as the callback it would have sent."""
        raw = RawCallback(
            receipt_id=uuid.uuid4(),
            received_at=received_at,
            params=repair.callback_params(message, account.account_sid),
        )
        await self.publish(message.sid, raw)

    def _account(self, record: SmsRecord) -> Subaccount | None:
        use_case = self.config.use_cases.get(record.use_case_id)
        if use_case is None:
            return None
        return self.config.subaccounts.get(use_case.account_sid)

    @staticmethod
    def _log(request: CancelRequest, answer: Canceled | SmslaneError) -> None:
        outcome = "canceled" if isinstance(answer, Canceled) else answer.code
        metrics.CANCELS.labels(outcome, request.reason or "request").inc()
        record = request.record
        log.info(
            "cancel of sid=%s (%s): %s", record.message_sid, request.reason or "API request",
            outcome, extra={"message_sid": record.message_sid, "record_id": str(record.id)},
        )  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)
