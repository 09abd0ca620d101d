"""The send agent: checks a send request, creates the message at Twilio once, answers.

Requests arrive keyed by ``request_id``; the outcome of each is kept in ``outcome_by_request``
(keyed the same way, so its changelog follows the stream's partitions). A replayed request,
whether a Kafka redelivery or a client retry with the same ``Idempotency-Key``, is answered
from there and never reaches Twilio twice.

This module is the Faust wiring only: :class:`SendAgent` takes batches
(:func:`~streams.batches.event_batches`: no timer while idle, none acked), hands them to
:class:`~streams.sending.admission.BatchAdmission` and the
:class:`~streams.sending.sender.Sender`, and publishes the answers. Provider calls of a batch
run concurrently and several batches are in flight at once, never with ``concurrency > 1``
(faust-streaming #606): events are acked by hand once answered, and Faust commits only up to
the first unacked offset, so a crash redelivers every unfinished event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from pydantic import ValidationError

from schemas.config import ConfigChange, config_key
from schemas.events import (
    CancelRequest,
    ExpireOutcome,
    RawCallback,
    Reconciled,
    SendRequest,
    SendTarget,
)
from schemas.topics import Topics
from streams import metrics
from streams.batches import event_batches
from streams.sending import decision
from streams.sending.admission import Answer, Batch, BatchAdmission, Incoming, SameRequest
from streams.sending.canceling import Canceler
from streams.sending.outcomes import OutcomeTable
from streams.sending.provider import TwilioGateway
from streams.sending.reconciling import RECONCILE_EVERY_S, Reconciling
from streams.sending.sender import Sender
from streams.tables import bind_event, changelog_table
from streams.worker import Worker

log = logging.getLogger(__name__)

BATCH_SIZE = 200
BATCH_WITHIN_S = 0.005
#: Requests being decided at once, over every batch in flight. A bound on batches instead
#: (8 of them) capped a worker at ~160 sends/s: at 100/s a 5 ms window holds one or two
#: requests, a batch lasts its Twilio calls (~50 ms), and the ninth waited for a free slot.
MAX_REQUESTS_IN_FLIGHT = 500
REQUESTS = Topics.SEND_REQUESTS.codec
#: What a value of ``sms.send-requests`` decodes to.
RequestsValue = SendRequest | ExpireOutcome | Reconciled | CancelRequest


class InFlightBudget:
    """At most ``limit`` requests in flight; a batch waits until its own fit (or none are).

    Taken only by the agent's loop, one batch at a time; given back by finished batches."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._freed = asyncio.Event()

    async def take(self, count: int) -> None:
        while self.used and self.used + count > self.limit:
            self._freed.clear()
            await self._freed.wait()
        self.used += count

    def give_back(self, count: int) -> None:
        self.used -= count
        self._freed.set()

    def releaser(self, count: int) -> Callable[[object], None]:
        """A done-callback that gives ``count`` back."""
        return lambda _: self.give_back(count)


class SendAgent:
    """``send_messages`` and its expiry timer, one method per step."""

    def __init__(self, worker: Worker, gateway: TwilioGateway) -> None:
        self.app, self.settings = worker.app, worker.settings
        self.requests_topic = worker.topic(Topics.SEND_REQUESTS.base_name)
        self.reconcile_topic = worker.topic(Topics.RECONCILE.base_name)
        self.created_topic = worker.topic(Topics.CREATED.base_name)
        self.config_topic = worker.topic(Topics.CONFIG.base_name)
        self.callbacks_topic = worker.topic(Topics.CALLBACKS.base_name)
        table = changelog_table(
            self.app, "outcome_by_request", key_type=bytes, value_type=bytes,
            partitions=self.settings.topic_partitions,
        )  # fmt: skip
        self.outcomes = OutcomeTable(table)
        self.sender = Sender(worker, gateway)
        self.config = worker.config
        self.canceler = Canceler(
            worker.config, gateway, self._publish_callback,
            timedelta(seconds=self.settings.status_repair_after_seconds),
        )  # fmt: skip
        self.admission = BatchAdmission(
            self.outcomes, bind=bind_event, target_of=self._expected_target,
            send_timeout_s=self.settings.send_timeout_seconds,
            reconcile_margin_s=self.settings.reconcile_margin_seconds,
        )  # fmt: skip
        self.reconciling = Reconciling(
            self.app, self.outcomes, self.admission, self.created_topic, self.reconcile_topic
        )
        self.interrupted = self.reconciling.index
        self._reply_topics: dict[str, faust.TopicT] = {}
        self._budget = InFlightBudget(MAX_REQUESTS_IN_FLIGHT)
        self._running: set[asyncio.Task[None]] = set()

    # -- the agent ---------------------------------------------------------------------

    async def run(self, stream: Any) -> None:  # a faust.Stream: StreamT lacks _enable_passive
        """Admit batches one at a time (no await in between), finish them concurrently."""
        try:
            async with contextlib.aclosing(
                event_batches(stream, BATCH_SIZE, BATCH_WITHIN_S)
            ) as batches:
                async for events in batches:
                    await self._budget.take(len(events))
                    self._start(stream, events)
        finally:
            await self._drain()

    async def drain_before_shutdown(
        self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """Faust's ``on_before_shutdown``: sent while the producer still runs, so the batches
        in flight (a Twilio call may take seconds) can still record and publish their answers.
        The agent's own wait when it is cancelled can itself be cut short by the stop."""
        await self._drain()

    async def _drain(self) -> None:
        if self._running:  # stopping: let the batches in flight answer (bounded)
            log.info("waiting for %d send batch(es) in flight before stopping", len(self._running))
            await asyncio.wait(self._running, timeout=self.settings.send_timeout_seconds)

    def _start(self, stream: faust.StreamT[Any], events: Sequence[faust.EventT[Any]]) -> None:
        incoming, reconciled, cancels = self._decode(events)
        batch = Batch(incoming, reconciled=reconciled)
        try:
            self.admission.admit(batch, _now())
        except Exception:
            # A bug: nothing of this batch was sent. Release its requests (their clients
            # get the ingress's 504) rather than stall commits and duplicates.
            log.exception("could not admit a send batch; its requests are dropped")
            task = asyncio.ensure_future(self._release(stream, events, batch))
        else:
            task = asyncio.ensure_future(self._finish(stream, events, batch, cancels))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        task.add_done_callback(self._budget.releaser(len(events)))

    def _decode(
        self, events: Sequence[faust.EventT[Any]]
    ) -> tuple[
        list[Incoming], list[tuple[faust.EventT[Any], Reconciled, float]], list[CancelRequest]
    ]:
        """The batch's send requests, reconciliation results and cancels; expiry orders
        are applied, stale events skipped."""
        generation = self.app.consumer_generation_id
        decoded = []
        reconciled = []
        cancels = []
        for event in events:
            if event.message.generation_id != generation:
                # Taken before a rebalance: its partition may be another worker's now, which
                # recovered the table without our marker. Faust's own streams skip these too.
                continue
            value = self._value(event)
            if isinstance(value, ExpireOutcome):
                self._forget_expired(event, value)
            elif isinstance(value, Reconciled):
                deadline = time.time() + self.settings.send_timeout_seconds
                reconciled.append((event, value, deadline))
            elif isinstance(value, CancelRequest):
                cancels.append(value)
            elif value is not None:
                deadline = decision.send_deadline(
                    event.message.timestamp, event.message.timestamp_type, value.received_at,
                    self.settings.send_timeout_seconds,
                )  # fmt: skip
                decoded.append(Incoming(event, value, deadline))
        return decoded, reconciled, cancels

    @staticmethod
    def _value(event: faust.EventT[Any]) -> RequestsValue | None:
        message = event.message
        try:
            if not isinstance(event.value, bytes):
                raise ValueError("no value")
            value: RequestsValue = REQUESTS.decode(event.value)
            return value
        except (ValidationError, ValueError) as exc:
            log.error(
                "skipping a malformed send request at %s[%d]@%d: %s",
                message.topic, message.partition, message.offset, type(exc).__name__,
            )  # fmt: skip
            metrics.SKIPPED_EVENTS.labels("send_messages").inc()
            return None

    async def _finish(
        self,
        stream: faust.StreamT[Any],
        events: Sequence[faust.EventT[Any]],
        batch: Batch,
        cancels: Sequence[CancelRequest] = (),
    ) -> None:
        try:
            await asyncio.gather(self._send(batch), *(self._cancel(c) for c in cancels))
        finally:
            await self._release(stream, events, batch)

    async def _send(self, batch: Batch) -> None:
        try:
            await self.reconciling.adopt(batch)
            await self._decide(batch)
            await self._answer(batch)
            await self.reconciling.order(batch.interrupted)
        except Exception:
            # A bug, not a provider error (those are outcomes): requests left without a reply
            # get the ingress's 504, and their in-flight markers keep retries from Twilio.
            log.exception("send batch failed part-way; unanswered requests will time out")

    async def _cancel(self, request: CancelRequest) -> None:
        """Cancel at Twilio; answer whoever waits (a bug leaves it to the ingress's 504)."""
        try:
            await self._cancel_and_answer(request)
        except Exception:
            log.exception("cancel of %s failed", request.record.message_sid)

    async def _cancel_and_answer(self, request: CancelRequest) -> None:
        reply = await self.canceler.cancel(request)
        if request.reply_topic:
            await self._reply_topic(request.reply_topic).send(
                key=request.correlation_id.encode(),
                value=Topics.SEND_REPLIES.codec.encode(reply), force=True,
            )  # fmt: skip

    async def _publish_callback(self, sid: str, raw: RawCallback) -> None:
        await self.callbacks_topic.send(
            key=sid.encode(), value=Topics.CALLBACKS.codec.encode(raw), force=True
        )

    async def _release(
        self, stream: faust.StreamT[Any], events: Sequence[faust.EventT[Any]], batch: Batch
    ) -> None:
        self.admission.release(batch, _now())
        for event in events:
            await stream.ack(event)

    async def _decide(self, batch: Batch) -> None:
        """Decide the new requests and the conflicts concurrently; collect every answer."""
        until = self.admission.window_of_new(batch)
        results = await asyncio.gather(
            *(self.sender.decide(i.request, batch.markers[i.request.request_id],
                                 deadline=i.deadline, reconcilable_until=until)
              for i in batch.new),
            *(self.sender.decide(i.request, None, deadline=i.deadline, reconcilable_until=until,
                                 conflict=True) for i in batch.conflicts),
            return_exceptions=True,
        )  # fmt: skip
        # Retrieve every marker write's result, even of requests that never awaited it.
        writes = [write for marker in batch.markers.values() for write in marker.writes]
        await asyncio.gather(*writes, return_exceptions=True)
        for item, result in zip([*batch.new, *batch.conflicts], results, strict=True):
            request = item.request
            if isinstance(result, BaseException):
                # A bug or an unexpected library error must not stop the agent.
                log.error("send request %s failed", request.request_id, exc_info=result)
                result = decision.Decided(decision.unexpected_failure(request, _now()))
            answer = Answer(result.outcome, result.opt_out, decided_here=item in batch.new)
            batch.answers[SameRequest.of(request)] = answer
            if answer.decided_here:
                self.admission.settle(request, answer.outcome)
        for same, future in batch.waiting.items():
            batch.answers[same] = Answer(await future)

    async def _answer(self, batch: Batch) -> None:
        """Record, publish and reply, in the batch's order, each bound to its event."""
        for item in [*batch.incoming, *batch.resends]:
            same = SameRequest.of(item.request)
            answer = batch.answers[same]
            if batch.firsts[same] is not item:  # a duplicate in the batch: replay it
                answer = Answer(answer.outcome)
            metrics.send_decided(answer.outcome.error, answer.decided_here)
            bind_event(item.event)
            resend = item in batch.resends
            if answer.decided_here:
                self._record(item.request, answer, resend=resend)
            await self._publish(item.request, answer)
            if resend:
                self.reconciling.count_resend(item.request, answer.outcome)

    def _record(self, request: SendRequest, answer: Answer, *, resend: bool) -> None:
        request_id = request.request_id
        if resend and decision.forget_after(answer.outcome):
            # Twilio did not take the resend (or its marker was not written), and no
            # client may retry: the marker stays, and reconciliation sends it again later.
            self.reconciling.resend_failed(request, answer.outcome)
        elif answer.outcome.in_flight:
            # Twilio may have it: the marker stays (with its time and request), and
            # reconciliation finds out.
            marker = self.outcomes.get(request_id)
            if marker is not None:
                self.interrupted.add(marker)
        elif decision.forget_after(answer.outcome):
            self.outcomes.forget(request_id)  # Twilio did not take it: a retry runs afresh
            self.interrupted.discard(request_id)
        else:
            self.outcomes.record(request_id, answer.outcome)
            self.interrupted.discard(request_id)

    async def _publish(self, request: SendRequest, answer: Answer) -> None:
        outcome = answer.outcome
        if answer.opt_out is not None:
            await self.config_topic.send(
                key=config_key(answer.opt_out).encode(),
                value=Topics.CONFIG.codec.encode(ConfigChange(entity=answer.opt_out)),
                partition=0, force=True,
            )  # fmt: skip
        if outcome.record is not None:
            await self.created_topic.send(
                key=outcome.record.message_sid.encode(),
                value=Topics.CREATED.codec.encode(outcome.created_event()), force=True,
            )  # fmt: skip
            if answer.decided_here:  # created here: never another request's message
                await self.reconciling.claim(request, outcome.record)
        await self._reply_topic(request.reply_topic).send(
            key=request.correlation_id.encode(),
            value=Topics.SEND_REPLIES.codec.encode(outcome.reply(request)), force=True,
        )  # fmt: skip

    def _reply_topic(self, name: str) -> faust.TopicT:
        if name not in self._reply_topics:
            self._reply_topics[name] = self.app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw",
                value_serializer="raw",
            )  # fmt: skip
        return self._reply_topics[name]

    def _expected_target(self, request: SendRequest) -> SendTarget | None:
        return decision.expected_target(request, self.config.use_cases.get(request.use_case_id))

    # -- expiry ------------------------------------------------------------------------

    def _forget_expired(self, event: faust.EventT[Any], order: ExpireOutcome) -> None:
        """Apply an expiry order on the key's own partition."""
        bind_event(event)  # reads, too, go to the current event's partition (rocksdb://)
        key = event.key
        if not isinstance(key, bytes):
            return
        outcome = self.outcomes.decode(key, self.outcomes.get_raw(key))
        if outcome is not None and decision.expired(outcome, order.at):
            self.outcomes.delete_key(key)

    async def expire_outcomes(self) -> None:
        """Outcomes older than the idempotency window leave the table (bounded state)."""
        now = _now()
        order = REQUESTS.encode(ExpireOutcome(at=now))
        for scanned, (key, outcome) in enumerate(self.outcomes.scan(), start=1):
            if scanned % 1000 == 0:
                await asyncio.sleep(0)
            if decision.expired(outcome, now):
                await self.requests_topic.send(key=key, value=order)


def register(worker: Worker, gateway: TwilioGateway) -> SendAgent:
    """Declare the send agent, its table and its timers on the worker's app."""
    agent = SendAgent(worker, gateway)
    worker.app.agent(agent.requests_topic, name="send_messages")(agent.run)
    worker.app.on_before_shutdown.connect(agent.drain_before_shutdown)
    worker.app.timer(interval=3600.0)(agent.expire_outcomes)
    worker.app.timer(interval=RECONCILE_EVERY_S)(agent.reconciling.tick)
    return agent


def _now() -> datetime:
    return datetime.now(UTC)
