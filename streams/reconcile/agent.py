"""The reconcile agent: asks Twilio whether interrupted requests' messages exist.

Orders arrive on ``sms.reconcile`` keyed by the destination, so one partition sees every
interrupted request to a number; ``adopted_by_to`` (keyed the same way) remembers which
Twilio SIDs were adopted, so that no message is adopted by two requests. The verdict goes
back to the send agent on ``sms.send-requests``, keyed by the request id, where the request's
outcome lives; the send agent adopts the message or sends the request once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import faust
from pydantic import BaseModel, ConfigDict, ValidationError

from feeds.config import ConfigView
from schemas.events import Reconciled, ReconcileOrder
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
#: Adoptions are remembered as long as a retry may come (the idempotency window).
ADOPTION_KEPT = timedelta(hours=24)


class Adoption(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: UUID
    at: datetime


class Adoptions(BaseModel):
    """Value of ``adopted_by_to``: the SIDs adopted for one destination."""

    model_config = ConfigDict(frozen=True)

    by_sid: dict[str, Adoption] = {}


ADOPTIONS: Codec[Adoptions] = Codec(Adoptions)


class AdoptedTable:
    """``adopted_by_to``: destination → the Twilio SIDs adopted for it, and by whom."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, to: str) -> Adoptions:
        value = self._table.get(to.encode())
        if value is None:
            return Adoptions()
        try:
            return ADOPTIONS.decode(value)
        except ValidationError:
            log.error("adopted_by_to holds an undecodable value for %s****", to[:-4])
            return Adoptions()

    def adopt(self, to: str, sid: str, request_id: UUID, now: datetime) -> None:
        kept = {s: a for s, a in self.get(to).by_sid.items() if a.at + ADOPTION_KEPT > now}
        kept[sid] = Adoption(request_id=request_id, at=now)
        self._table[to.encode()] = ADOPTIONS.encode(Adoptions(by_sid=kept))


class ReconcileAgent:
    """``reconcile_interrupted``: one method per step."""

    def __init__(self, worker: Worker, gateway: TwilioGateway) -> None:
        self.app, self.settings, self.gateway = worker.app, worker.settings, gateway
        self.config: ConfigView = worker.config
        self.orders_topic = worker.topic(Topics.RECONCILE.base_name)
        self.requests_topic = worker.topic(Topics.SEND_REQUESTS.base_name)
        self.adopted = AdoptedTable(
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
        orders = self._decode(events)
        looked = await asyncio.gather(
            *(self._look(order) for _, order in orders), return_exceptions=True
        )
        for (event, order), found in zip(orders, looked, strict=True):
            if isinstance(found, BaseException):
                log.error("reconciling %s failed", order.request.request_id, exc_info=found)
                metrics.RECONCILED.labels("failed").inc()
                continue
            bind_event(event)
            await self._settle(order, found)

    def _decode(
        self, events: Sequence[faust.EventT[Any]]
    ) -> list[tuple[faust.EventT[Any], ReconcileOrder]]:
        """The batch's orders, one per request (the latest marker wins)."""
        by_request: dict[UUID, tuple[faust.EventT[Any], ReconcileOrder]] = {}
        for event in events:
            if event.message.generation_id != self.app.consumer_generation_id:
                continue  # taken before a rebalance: the partition may be another's now
            try:
                order = Topics.RECONCILE.codec.decode(event.value)
            except (ValidationError, ValueError, TypeError):
                log.error("skipping a malformed reconcile order at offset %d", event.message.offset)
                metrics.SKIPPED_EVENTS.labels("reconcile_interrupted").inc()
                continue
            by_request[order.request.request_id] = (event, order)
        return list(by_request.values())

    async def _look(self, order: ReconcileOrder) -> list[TwilioMessage] | None:
        """The candidate messages at Twilio; None when Twilio cannot be asked (the use
        case or its subaccount is gone): the request is then sent, and its checks answer."""
        use_case = self.config.use_cases.get(order.request.use_case_id)
        account = self.config.subaccounts.get(use_case.account_sid) if use_case else None
        if use_case is None or account is None:
            return None
        since = order.marker_at - decision.CLOCK_SLACK
        try:
            messages = await self.gateway.recent_messages(account, _to(order), since)
        except ProviderDown as exc:
            raise RuntimeError(f"Twilio's list failed: {exc.reason}") from exc
        return decision.candidates(
            order.request, _to(order), use_case.messaging_service_sid, order.marker_at, messages
        )

    async def _settle(self, order: ReconcileOrder, found: list[TwilioMessage] | None) -> None:
        request, now = order.request, datetime.now(UTC)
        to = _to(order)
        adopted = {s: a.request_id for s, a in self.adopted.get(to).by_sid.items()}
        ends_at = decision.window_end(
            order.marker_at, self.settings.send_timeout_seconds,
            self.settings.reconcile_margin_seconds,
        )  # fmt: skip
        if found is None:  # nothing to ask Twilio with: let the send path answer
            verdict: decision.Verdict = Resend() if now >= ends_at else Wait(ends_at)
        else:
            verdict = decision.verdict(request.request_id, found, adopted, now, ends_at)
        match verdict:
            case Adopt(sid):
                self.adopted.adopt(to, sid, request.request_id, now)
                await self._answer(order, sid)
            case Resend():
                await self._answer(order, None)
            case Wait(until):
                metrics.RECONCILED.labels("waiting").inc()
                log.info(
                    "reconciling %s: not at Twilio yet; sent at %s if still not found",
                    request.request_id, until.isoformat(timespec="seconds"),
                )  # fmt: skip

    async def _answer(self, order: ReconcileOrder, sid: str | None) -> None:
        result = Reconciled(
            request_id=order.request.request_id, marker_at=order.marker_at, message_sid=sid
        )
        await self.requests_topic.send(
            key=order.request.request_id.bytes, value=Topics.SEND_REQUESTS.codec.encode(result),
            force=True,
        )  # fmt: skip


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
