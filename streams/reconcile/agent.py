"""The reconcile agent: asks Twilio whether interrupted requests' messages exist.

Orders arrive on ``sms.reconcile`` keyed by the destination, so one partition sees every
interrupted request to a number. The send path publishes there too, with the same key, each
SID it creates (:class:`~schemas.events.SidClaimed`); ``adopted_by_to`` (keyed the same way,
written only here) remembers every SID claimed for a number, created or adopted, so that no
message is adopted by a request it is not for. The verdict goes back to the send agent on
``sms.send-requests``, keyed by the request id, where the request's outcome lives; the send
agent adopts the message or sends the request once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import faust
from pydantic import BaseModel, ConfigDict, ValidationError

from feeds.config import ConfigView
from schemas.config import Subaccount
from schemas.events import Reconciled, ReconcileOrder, SendTarget, SidClaimed
from schemas.topics import Codec, Topics
from streams import metrics
from streams.batches import finished_batches
from streams.reconcile import decision
from streams.reconcile.decision import Adopt, Resend, Wait
from streams.sending import checks
from streams.sending.provider import ProviderDown, TwilioGateway, TwilioMessage
from streams.tables import bind_event
from streams.worker import Worker

log = logging.getLogger(__name__)

BATCH_SIZE = 50
BATCH_WITHIN_S = 0.05
#: Claims are remembered as long as a retry may come (the idempotency window).
CLAIM_KEPT = timedelta(hours=24)


class Claim(BaseModel):
    """A Twilio SID that is one request's message."""

    model_config = ConfigDict(frozen=True)

    request_id: UUID
    at: datetime
    #: True: reconciliation adopted it; False: the send path created it.
    adopted: bool = True


class Claims(BaseModel):
    """Value of ``adopted_by_to``: the SIDs claimed for one destination."""

    model_config = ConfigDict(frozen=True)

    by_sid: dict[str, Claim] = {}


CLAIMS: Codec[Claims] = Codec(Claims)


class ClaimedTable:
    """``adopted_by_to`` (its name from when it held adoptions only; kept so that an upgrade
    keeps them): destination and body → the Twilio SIDs claimed for them, and by which
    request. Only a message with the request's body can be its message, so a number that
    gets many different messages keeps many small values, not one growing one. Every key
    starts with the destination: written only from the destination's partition of
    ``sms.reconcile``, the table is co-partitioned with it."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def requests_by_sid(self, to: str, body: str) -> dict[str, UUID]:
        """SID → request, for the messages to ``to`` with ``body`` (and the adoptions of
        any body made before claims were kept per body)."""
        legacy, claims = self._get(to.encode()), self._get(_key(to, decision.body_digest(body)))
        merged = {**legacy.by_sid, **claims.by_sid}
        return {sid: claim.request_id for sid, claim in merged.items()}

    def claim(self, to: str, digest: str, sid: str, claim: Claim, now: datetime) -> None:
        """Remember ``claim`` of ``sid`` (to ``to``, its body's :func:`~streams.reconcile.
        decision.body_digest` ``digest``); claims older than :data:`CLAIM_KEPT` go."""
        key = _key(to, digest)
        kept = {s: c for s, c in self._get(key).by_sid.items() if c.at + CLAIM_KEPT > now}
        kept[sid] = claim
        self._table[key] = CLAIMS.encode(Claims(by_sid=kept))

    def _get(self, key: bytes) -> Claims:
        value = self._table.get(key)
        if value is None:
            return Claims()
        try:
            return CLAIMS.decode(value)
        except ValidationError:
            log.error("adopted_by_to holds an undecodable value for %s****", key[:8].decode())
            return Claims()


def _key(to: str, digest: str) -> bytes:
    return f"{to} {digest}".encode()


@dataclass(frozen=True)
class Unasked:
    """Twilio could not be asked: ``why`` is the configuration (not caught up, subaccount
    unknown, token not opened) or Twilio itself (the list call failed)."""

    why: Literal["configuration", "twilio"]
    detail: str


Order = tuple[faust.EventT[Any], ReconcileOrder]
Claimed = tuple[faust.EventT[Any], SidClaimed]


class ReconcileAgent:
    """``reconcile_interrupted``: one method per step."""

    def __init__(self, worker: Worker, gateway: TwilioGateway) -> None:
        self.app, self.settings, self.gateway = worker.app, worker.settings, gateway
        self.config: ConfigView = worker.config
        self.orders_topic = worker.topic(Topics.RECONCILE.base_name)
        self.requests_topic = worker.topic(Topics.SEND_REQUESTS.base_name)
        self.claimed = ClaimedTable(
            self.app.Table(
                "adopted_by_to", key_type=bytes, value_type=bytes,
                partitions=self.settings.topic_partitions,
            )
        )  # fmt: skip

    async def run(self, stream: Any) -> None:  # a faust.Stream
        async for events in finished_batches(stream, BATCH_SIZE, BATCH_WITHIN_S):
            try:
                await self._reconcile(events)
            except Exception:
                log.exception("reconciliation batch failed; its requests are asked again later")

    async def _reconcile(self, events: Sequence[faust.EventT[Any]]) -> None:
        claims, orders = self._decode(events)
        self.record_claims(claims)  # first: an order of this batch must see them
        looked = await asyncio.gather(
            *(self.look(order) for _, order in orders), return_exceptions=True
        )
        for (event, order), found in zip(orders, looked, strict=True):
            if isinstance(found, BaseException):
                log.error("reconciling %s failed", order.request.request_id, exc_info=found)
                metrics.RECONCILED.labels("failed").inc()
                continue
            bind_event(event)
            await self.settle(order, found, ordered_at=_timestamp(event))

    def _decode(self, events: Sequence[faust.EventT[Any]]) -> tuple[list[Claimed], list[Order]]:
        """The batch's claims, and its orders, one per request (the latest marker wins)."""
        claims: list[Claimed] = []
        by_request: dict[UUID, Order] = {}
        for event in events:
            if event.message.generation_id != self.app.consumer_generation_id:
                continue  # taken before a rebalance: the partition may be another's now
            try:
                value = Topics.RECONCILE.codec.decode(event.value)
            except (ValidationError, ValueError, TypeError):
                log.error("skipping a malformed reconcile order at offset %d", event.message.offset)
                metrics.SKIPPED_EVENTS.labels("reconcile_interrupted").inc()
                continue
            if isinstance(value, SidClaimed):
                claims.append((event, value))
            else:
                by_request[value.request.request_id] = (event, value)
        return claims, list(by_request.values())

    def record_claims(self, claims: Sequence[Claimed]) -> None:
        """Remember the SIDs the send path created: they are never another request's."""
        for event, claimed in claims:
            bind_event(event)
            claim = Claim(request_id=claimed.request_id, at=claimed.at, adopted=False)
            self.claimed.claim(
                claimed.to, claimed.body_digest, claimed.message_sid, claim, claimed.at
            )

    async def look(self, order: ReconcileOrder) -> list[TwilioMessage] | Unasked:
        """The candidate messages at Twilio, or why Twilio could not be asked."""
        target = self.target(order)
        if isinstance(target, Unasked):
            return target
        account = self.account(target.account_sid)
        if isinstance(account, Unasked):
            return account
        since = order.marker_at - decision.CLOCK_SLACK
        try:
            messages = await self.gateway.recent_messages(account, target.to, since)
        except ProviderDown as exc:
            return Unasked("twilio", f"Twilio's list failed: {exc.reason}")
        return decision.candidates(
            order.request, target, order.marker_at, self._window_end(order), messages
        )

    def target(self, order: ReconcileOrder) -> SendTarget | Unasked:
        """Where the create call went: the marker's snapshot, or (a marker written before
        markers carried one) where the use case points today."""
        if self.config.problem is not None:
            return Unasked("configuration", self.config.problem)
        if order.target is not None:
            return order.target
        use_case = self.config.use_cases.get(order.request.use_case_id)
        if use_case is None:
            return Unasked("configuration", "its use case is not in the configuration")
        return SendTarget(
            account_sid=use_case.account_sid,
            messaging_service_sid=use_case.messaging_service_sid, to=_to(order),
        )  # fmt: skip

    def account(self, account_sid: str) -> Subaccount | Unasked:
        account = self.config.subaccounts.get(account_sid)
        if account is not None:
            return account
        if account_sid in self.config.undecryptable:
            return Unasked("configuration", f"subaccount {account_sid}'s token cannot be opened")
        return Unasked("configuration", f"subaccount {account_sid} is not in the configuration")

    def _window_end(self, order: ReconcileOrder) -> datetime:
        return decision.window_end(
            order.marker_at, self.settings.send_timeout_seconds,
            self.settings.reconcile_margin_seconds,
        )  # fmt: skip

    async def settle(
        self, order: ReconcileOrder, looked: list[TwilioMessage] | Unasked, *, ordered_at: datetime
    ) -> None:
        """Decide on what was found (or not asked) and act on it. ``ordered_at`` is when the
        order was published: claims published before it are in the table."""
        request, now, to = order.request, datetime.now(UTC), _to(order)
        found = None if isinstance(looked, Unasked) else looked
        claimed = self.claimed.requests_by_sid(to, request.message)
        self._count_refused(order, found, claimed)
        lag = decision.claim_lag(self.settings.send_timeout_seconds)
        verdict = decision.verdict(
            request.request_id, found, claimed, now, self._window_end(order),
            claims_seen_until=ordered_at - lag,
        )  # fmt: skip
        match verdict:
            case Adopt(sid):
                claim = Claim(request_id=request.request_id, at=now)
                self.claimed.claim(to, decision.body_digest(request.message), sid, claim, now)
                await self._answer(order, sid)
            case Resend():
                await self._answer(order, None)
            case Wait(until, why):
                self._count_wait(order, until, why, looked)

    @staticmethod
    def _count_refused(
        order: ReconcileOrder, found: list[TwilioMessage] | None, claimed: dict[str, UUID]
    ) -> None:
        for sid in decision.refused(order.request.request_id, found, claimed):
            metrics.RECONCILED.labels("refused").inc()
            log.warning(
                "reconciling %s: Twilio's message %s is request %s's; not adopted",
                order.request.request_id, sid, claimed[sid], extra={"message_sid": sid},
            )  # fmt: skip

    @staticmethod
    def _count_wait(
        order: ReconcileOrder, until: datetime, why: str, looked: list[TwilioMessage] | Unasked
    ) -> None:
        request_id, at = order.request.request_id, until.isoformat(timespec="seconds")
        if isinstance(looked, Unasked):
            metrics.RECONCILED.labels(f"waiting_{looked.why}").inc()
            log.warning(
                "reconciling %s: Twilio cannot be asked (%s); not sent again until it can be, "
                "asked again after %s", request_id, looked.detail, at,
            )  # fmt: skip
        elif why == "claims":
            metrics.RECONCILED.labels("waiting_claims").inc()
            log.info(
                "reconciling %s: a matching message is too recent to tell whether it is "
                "another request's; asked again after %s", request_id, at,
            )  # fmt: skip
        else:
            metrics.RECONCILED.labels("waiting").inc()
            log.info(
                "reconciling %s: not at Twilio yet; sent at %s if still not found",
                request_id, at,
            )  # fmt: skip

    async def _answer(self, order: ReconcileOrder, sid: str | None) -> None:
        result = Reconciled(
            request_id=order.request.request_id, marker_at=order.marker_at, message_sid=sid
        )
        await self.requests_topic.send(
            key=order.request.request_id.bytes, value=Topics.SEND_REQUESTS.codec.encode(result),
            force=True,
        )  # fmt: skip


def _timestamp(event: faust.EventT[Any]) -> datetime:
    """When the event was published (its Kafka timestamp)."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


def _to(order: ReconcileOrder) -> str:
    destination = checks.parse_destination(order.request.to_phone_number)
    if isinstance(destination, checks.Destination):
        return destination.e164
    return order.request.to_phone_number


def register(worker: Worker, gateway: TwilioGateway) -> ReconcileAgent:
    """Declare the reconcile agent and its table on the worker's app."""
    agent = ReconcileAgent(worker, gateway)
    worker.app.agent(agent.orders_topic, name="reconcile_interrupted")(agent.run)
    return agent
