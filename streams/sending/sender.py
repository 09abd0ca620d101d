"""One send request through the contract's checks and Twilio: the I/O around the decision.

:class:`Sender` waits for the configuration the request needs, calls Lookup and Twilio, and
leaves every rule to :mod:`streams.sending.decision`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol

from feeds.config import ConfigView
from schemas.errors import ProviderUnavailable, ServiceUnavailable, SmslaneError
from schemas.events import SendRequest, SendTarget
from schemas.settings import Settings
from streams.sending import decision
from streams.sending.decision import Decided, Prechecked, Ready
from streams.sending.provider import (
    ProviderDown,
    ProviderMaybeSent,
    ProviderRejection,
    Schedule,
    TwilioGateway,
)

log = logging.getLogger(__name__)

#: How long a request waits for the configuration its ingress had seen.
CONFIG_WAIT_S = 5.0


class Marker(Protocol):
    """A new request's in-flight marker (:class:`~streams.sending.admission.InFlightMarker`)."""

    def written_for(self, target: SendTarget) -> Awaitable[object]:
        """The marker's write naming ``target``; done once it is durable."""
        ...


class Context(Protocol):
    """What a sender needs of the worker."""

    config: ConfigView
    settings: Settings


class Sender:
    """Runs one request through the checks and Twilio."""

    def __init__(self, context: Context, gateway: TwilioGateway) -> None:
        self.config = context.config
        self.settings = context.settings
        self.gateway = gateway

    async def decide(
        self,
        request: SendRequest,
        marker: Marker | None,
        *,
        deadline: float,
        reconcilable_until: datetime,
        conflict: bool = False,
    ) -> Decided:
        """The request's outcome, and an opt-out to record (Twilio 21610).

        ``marker`` is the request's in-flight marker: its write (with where the create call
        goes, rewritten if admission expected elsewhere) is awaited right before the create
        call, so that in the common case the write overlaps the checks and Lookup.
        ``deadline`` (epoch seconds, :func:`~streams.sending.decision.send_deadline`) is when
        the ingress stops waiting: Twilio is not called, nor retried, past it.
        ``reconcilable_until`` is when reconciliation can settle the request if Twilio's
        answer is lost (the end of its marker's window): the 503 then says to come back then.
        ``conflict`` (the key was used with another body) answers 409 once the earlier
        checks pass, without calling Twilio.
        """
        checked = await self._check(request, conflict=conflict)
        if isinstance(checked, SmslaneError):
            return Decided(decision.check_failed(request, checked, _now()))
        if marker is not None and not await self._marker_written(
            request, marker.written_for(checked.target)
        ):
            error = ServiceUnavailable("Kafka did not take the request's marker; retry.")
            return Decided(decision.error_outcome(request, error, _now(), retry_after=1))
        return await self._create(request, checked, deadline, reconcilable_until)

    async def _check(self, request: SendRequest, *, conflict: bool) -> Ready | SmslaneError:
        if not await self.config.wait_for(request.config_offset, timeout_s=CONFIG_WAIT_S):
            problem = self.config.problem or "it has not caught up with the latest changes"
            return ServiceUnavailable(
                f"The worker cannot read its configuration ({problem}); retry shortly."
            )
        prechecked = decision.precheck(
            request, self.config.use_cases.get(request.use_case_id), self.config
        )
        if isinstance(prechecked, SmslaneError):
            return prechecked
        line_type = await self._line_type(prechecked)
        ready = decision.postcheck(prechecked, line_type, self.config, conflict=conflict)
        if isinstance(ready, ProviderUnavailable):  # no usable subaccount: say which
            log.error(
                "send request %s not sent: %s", request.request_id, ready.detail,
                extra={"account_sid": prechecked.use_case.account_sid},
            )  # fmt: skip
        return ready

    async def _line_type(self, prechecked: Prechecked) -> str | None:
        if prechecked.account is None or self.settings.line_type_lookup != "on":
            return None
        try:
            return await self.gateway.line_type(prechecked.account, prechecked.destination.e164)
        except ProviderDown as exc:
            log.warning("Lookup unavailable (%s); sending without the line type", exc.reason)
            return None

    @staticmethod
    async def _marker_written(request: SendRequest, durable: Awaitable[object]) -> bool:
        """Whether the in-flight marker is in Kafka. If not, Twilio is not called and the
        request is forgotten, not "interrupted", so that a retry is sent normally."""
        try:
            await durable
        except Exception as exc:
            log.error("in-flight marker of %s not written: %r", request.request_id, exc)
            return False
        return True

    async def _create(
        self, request: SendRequest, ready: Ready, deadline: float, reconcilable_until: datetime
    ) -> Decided:
        left = deadline - time.time()
        if left <= 0:  # the client has had its 504: sending now could double a retry
            return Decided(decision.too_late(request, _now()))
        try:
            sid = await self.gateway.create_message(
                ready.account, ready.use_case.messaging_service_sid, ready.destination.e164,
                request.message, deadline=time.monotonic() + left,
                schedule=Schedule(request.send_at, request.validity_period),
            )  # fmt: skip
        except ProviderMaybeSent as exc:
            log.error("Twilio may or may not have created the message (%s)", exc.reason)
            return Decided(decision.maybe_sent(request, exc.reason, _now(), reconcilable_until))
        except ProviderDown as exc:
            return Decided(decision.provider_down(request, exc.reason, exc.retry_after, _now()))
        if isinstance(sid, ProviderRejection):
            log.info("Twilio rejected the message: HTTP %s code %s", sid.status, sid.code)
            return decision.rejected(request, ready, sid.code, sid.message, _now())
        outcome = decision.created(request, ready, sid, _now())
        assert outcome.record is not None
        log.info(
            "message created sid=%s use_case=%s", sid, ready.use_case.id,
            extra={"message_sid": sid, "record_id": str(outcome.record.id)},
        )  # fmt: skip
        return Decided(outcome)


def _now() -> datetime:
    return datetime.now(UTC)
