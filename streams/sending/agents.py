"""The send agent: checks a send request, creates the message at Twilio once, answers.

Requests arrive keyed by ``request_id``; the outcome of each is kept in the table
``outcome_by_request`` (keyed the same way, so its changelog follows the stream's partitions).
A replayed request, whether a Kafka redelivery or a client retry with the same
``Idempotency-Key``, is answered from there and never reaches Twilio twice.

Provider calls of a batch run concurrently (``noack_take`` + ``gather``), and several batches
are in flight at once, never with ``concurrency > 1`` (faust-streaming #606): events are acked
by hand once answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.config import ConfigChange, OptOut, config_key
from schemas.errors import (
    DestinationOptedOut,
    IdempotencyKeyReused,
    InvalidDestination,
    ProviderUnavailable,
    ServiceUnavailable,
    SmslaneError,
)
from schemas.events import ErrorBody, SendReply, SendRequest
from schemas.records import SmsRecord
from schemas.topics import Topics
from streams import metrics
from streams.app import bind_event, changelog_table
from streams.sending import checks
from streams.sending.provider import (
    ProviderDown,
    ProviderMaybeSent,
    ProviderRejection,
    TwilioGateway,
)

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
BATCH_SIZE = 200
BATCH_WITHIN_S = 0.005
#: Batches being decided at once (each up to BATCH_SIZE requests).
MAX_BATCHES_IN_FLIGHT = 8


class Outcome(BaseModel):
    """What a request ended in: the table value of ``outcome_by_request``."""

    model_config = ConfigDict(frozen=True)

    body_hash: str
    decided_at: datetime
    status_code: int
    record: SmsRecord | None = None
    error: ErrorBody | None = None
    retry_after: int | None = None
    #: Written (and flushed to the changelog) before Twilio is called: found on a
    #: redelivery, it means an earlier attempt may have reached Twilio, so it is not retried.
    in_flight: bool = False

    def reply(self, request: SendRequest) -> SendReply:
        return SendReply(
            correlation_id=request.correlation_id,
            request_id=request.request_id,
            status_code=self.status_code,
            record=self.record,
            error=self.error,
            retry_after=self.retry_after,
        )


EXPIRE_PREFIX = b'{"expire_outcome"'


def _decided_at(value: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(value)["decided_at"])


#: Kept back from the ingress's deadline for the answer's way back to it.
REPLY_MARGIN_S = 0.5
LOG_APPEND_TIME = 1


def send_deadline(message: Any, request: SendRequest, timeout_s: float) -> float:
    """When the ingress stops waiting for ``request`` (epoch seconds), less a margin.

    The ingress waits ``timeout_s`` from the broker's ack of the request. The requests topic
    stamps each record with the broker's clock when it is appended (LogAppendTime), never
    after that ack, so the append time plus ``timeout_s`` is never later than the moment the
    ingress gives up, whatever the ingress's own clock says: only the broker's and this
    worker's clocks need to agree. A record without a broker timestamp (a topic created
    before it had that setting) falls back to the ingress's ``received_at``.
    """
    if message.timestamp and message.timestamp_type == LOG_APPEND_TIME:
        start = float(message.timestamp)
    else:
        start = request.received_at.timestamp()
    return start + timeout_s - REPLY_MARGIN_S


def _error_outcome(request: SendRequest, error: SmslaneError, **extra: Any) -> Outcome:
    return Outcome(
        body_hash=request.body_hash,
        decided_at=datetime.now(UTC),
        status_code=error.status_code,
        error=ErrorBody(detail=error.detail, code=error.code),
        **extra,
    )


class Sender:
    """Runs one request through the contract's checks and Twilio."""

    def __init__(self, worker: Any, gateway: TwilioGateway) -> None:
        self.worker = worker
        self.config = worker.config
        self.settings = worker.settings
        self.gateway = gateway

    async def decide(
        self,
        request: SendRequest,
        durable: Awaitable[object] | None,
        *,
        deadline: float,
        conflict: bool = False,
    ) -> tuple[Outcome, OptOut | None]:
        """The outcome of a request, and an opt-out to record (Twilio 21610).

        The contract's checks run in its order; ``conflict`` (the Idempotency-Key was used
        with another body) answers 409 once they pass, without calling Twilio. ``durable``
        completes once the request's in-flight marker is in Kafka; it is awaited right before
        the create call, so the write overlaps the checks and Lookup. ``deadline`` (epoch
        seconds, see :func:`send_deadline`) is when the ingress stops waiting: Twilio is not
        called, nor retried, past it.
        """
        error: SmslaneError | None
        if not await self.config.wait_for(request.config_offset, timeout_s=5.0):
            problem = self.config.problem or "it has not caught up with the latest changes"
            error = ServiceUnavailable(
                f"The worker cannot read its configuration ({problem}); retry shortly."
            )
            return _error_outcome(request, error, retry_after=2), None
        config = self.config
        use_case = config.use_cases.get(request.use_case_id)
        senders = config.sender_list(request.use_case_id)
        error = checks.check_use_case(use_case, senders)
        if error is not None:
            return _error_outcome(request, error), None
        assert use_case is not None
        destination = checks.parse_destination(request.to_phone_number)
        if isinstance(destination, SmslaneError):
            return _error_outcome(request, destination), None
        account = config.subaccounts.get(use_case.account_sid)
        line_type = None
        if account is not None and self.settings.line_type_lookup == "on":
            try:
                line_type = await self.gateway.line_type(account, destination.e164)
            except ProviderDown as exc:
                log.warning("Lookup unavailable (%s); sending without the line type", exc.reason)
        if line_type == "invalid":
            error = InvalidDestination(
                f"Twilio Lookup reports {destination.e164} as not a valid phone number."
            )
            return _error_outcome(request, error), None
        error = checks.check_destination(
            destination,
            line_type,
            config.opted_out(use_case.id, destination.e164),
            use_case,
            config.brands.get(use_case.brand_id),
        )
        if error is not None:
            return _error_outcome(request, error), None
        if conflict:
            return _error_outcome(request, IdempotencyKeyReused()), None
        if account is None:
            error = ProviderUnavailable(
                f"The use case's Twilio subaccount {use_case.account_sid} is not configured."
            )
            return _error_outcome(request, error, retry_after=60), None
        if durable is not None:
            try:
                await durable
            except Exception as exc:
                # The marker may not be in Kafka: Twilio is not called, and the request is
                # forgotten (not "interrupted"), so that a retry is sent normally.
                log.error("in-flight marker of %s not written: %r", request.request_id, exc)
                error = ServiceUnavailable("Kafka did not take the request's marker; retry.")
                return _error_outcome(request, error, retry_after=1), None
        left = deadline - time.time()
        if left <= 0:
            # The client has had its 504 already; sending now could double a retry of it.
            error = ProviderUnavailable("The request waited too long to be sent; retry it.")
            return _error_outcome(request, error, retry_after=1), None
        try:
            sid = await self.gateway.create_message(
                account, use_case.messaging_service_sid, destination.e164, request.message,
                deadline=time.monotonic() + left,
            )  # fmt: skip
        except ProviderMaybeSent as exc:
            log.error("Twilio may or may not have created the message (%s)", exc.reason)
            error = ProviderUnavailable(
                f"Twilio's answer was lost ({exc.reason}); the message may have been sent, so "
                "this request is not repeated."
            )
            return _error_outcome(request, error, retry_after=exc.retry_after, in_flight=True), None
        except ProviderDown as exc:
            error = ProviderUnavailable(f"Twilio is unavailable ({exc.reason}); retry later.")
            return _error_outcome(request, error, retry_after=exc.retry_after), None
        if isinstance(sid, ProviderRejection):
            return self._rejected(request, sid, use_case.id, destination.e164)
        now = datetime.now(UTC)
        record = SmsRecord(
            id=uuid.uuid4(),
            use_case_id=use_case.id,
            message_sid=sid,
            to_number=destination.e164,
            body=request.message,
            created_at=request.received_at,
            updated_at=request.received_at,
        )
        log.info(
            "message created sid=%s use_case=%s", sid, use_case.id,
            extra={"message_sid": sid, "record_id": str(record.id)},
        )  # fmt: skip
        return Outcome(
            body_hash=request.body_hash, decided_at=now, status_code=201, record=record
        ), None

    def _rejected(
        self, request: SendRequest, rejection: ProviderRejection, use_case_id: uuid.UUID, to: str
    ) -> tuple[Outcome, OptOut | None]:
        error_type = checks.error_for_twilio_code(rejection.code)
        log.info("Twilio rejected the message: HTTP %s code %s", rejection.status, rejection.code)
        if error_type is None:
            error: SmslaneError = ProviderUnavailable(
                f"Twilio refused the message (error {rejection.code}: {rejection.message})."
            )
            return _error_outcome(request, error, retry_after=60), None
        opt_out = None
        if error_type is DestinationOptedOut:
            opt_out = OptOut(use_case_id=use_case_id, phone_number=to, created_at=datetime.now(UTC))
        detail = f"{error_type.default_detail} (Twilio error {rejection.code})"
        return _error_outcome(request, error_type(detail)), opt_out


#: Requests that get one answer: same request id, same body.
Same = tuple[uuid.UUID, str]


def same(request: SendRequest) -> Same:
    return request.request_id, request.body_hash


@dataclass
class Batch:
    """One take of the request stream, sorted by what each request needs."""

    events: Sequence[faust.EventT]
    decoded: list[tuple[faust.EventT, SendRequest]] = field(default_factory=list)
    #: The first request of each (id, body) in the batch; later ones replay its outcome.
    firsts: dict[Same, SendRequest] = field(default_factory=dict)
    #: Requests to decide now (marked in flight), and ids reused with another body.
    new: list[SendRequest] = field(default_factory=list)
    conflicts: list[SendRequest] = field(default_factory=list)
    #: Outcomes known already, and those another batch in flight is deciding.
    decided: dict[Same, tuple[Outcome, OptOut | None, bool]] = field(default_factory=dict)
    waiting: dict[Same, asyncio.Future[Outcome]] = field(default_factory=dict)
    #: The changelog write of each new request's in-flight marker.
    markers: dict[uuid.UUID, asyncio.Future[Any]] = field(default_factory=dict)
    #: When the ingress stops waiting for each request (see :func:`send_deadline`).
    deadlines: dict[uuid.UUID, float] = field(default_factory=dict)


def register(worker: Any) -> None:
    """Declare the send agent and its table on the worker's app."""
    app: faust.App = worker.app
    requests_topic = worker.topic(Topics.SEND_REQUESTS.base_name)
    created_topic = worker.topic(Topics.CREATED.base_name)
    config_topic = worker.topic(Topics.CONFIG.base_name)
    outcomes = changelog_table(
        app,
        "outcome_by_request",
        key_type=bytes,
        value_type=bytes,
        partitions=worker.settings.topic_partitions,
    )
    gateway = TwilioGateway(worker.settings)
    worker.closers.append(gateway.close)
    sender = Sender(worker, gateway)
    reply_topics: dict[str, faust.TopicT] = {}
    #: Requests a batch in flight is deciding: their body hash and the outcome to come.
    deciding: dict[uuid.UUID, tuple[str, asyncio.Future[Outcome]]] = {}

    def reply_topic(name: str) -> faust.TopicT:
        if name not in reply_topics:
            reply_topics[name] = app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw",
                value_serializer="raw",
            )  # fmt: skip
        return reply_topics[name]

    def remembered(request: SendRequest) -> Outcome | bool:
        """The answer already owed to this request id (within 24 hours); else False, or
        True when the id was used with another body (409 once the checks pass)."""
        stored = outcomes.get(request.request_id.bytes)
        if stored is None:
            return False
        previous = Outcome.model_validate_json(stored)
        if datetime.now(UTC) - previous.decided_at >= IDEMPOTENCY_WINDOW:
            return False
        if previous.body_hash != request.body_hash:
            return True
        if previous.in_flight:
            log.error("send request %s was interrupted mid-call; not retried", request.request_id)
            return _error_outcome(
                request,
                ProviderUnavailable(
                    "An earlier attempt of this request was interrupted while Twilio was being "
                    "called; it is not retried, so that the message is never sent twice."
                ),
                retry_after=60,
            )
        return previous

    def forget_expired(event: faust.EventT) -> None:
        """Apply an expiry order (from ``expire_outcomes``) on the key's own partition."""
        order = datetime.fromisoformat(orjson.loads(event.value)["expire_outcome"])
        bind_event(event)  # reads, too, go to the current event's partition (rocksdb://)
        stored = outcomes.get(event.key)
        if stored is not None and _decided_at(stored) + IDEMPOTENCY_WINDOW <= order:
            del outcomes[event.key]

    @app.timer(interval=3600.0)
    async def expire_outcomes() -> None:
        """Outcomes older than the idempotency window leave the table (bounded state)."""
        now = datetime.now(UTC)
        order = orjson.dumps({"expire_outcome": now.isoformat()})
        for scanned, (key, value) in enumerate(list(outcomes.items()), start=1):
            if scanned % 1000 == 0:
                await asyncio.sleep(0)
            if _decided_at(value) + IDEMPOTENCY_WINDOW <= now:
                await requests_topic.send(key=key, value=order)

    @app.agent(requests_topic, name="send_messages")
    async def send_messages(stream: Any) -> None:
        # Batches are admitted one at a time (table reads and in-flight markers, no await in
        # between), then finished concurrently: while one batch waits on Kafka or Twilio the
        # next is taken. Events are acked when their batch has answered, and Faust commits
        # only up to the first unacked offset, so a crash redelivers every unfinished event.
        slots = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        try:
            async for events in stream.noack_take(BATCH_SIZE, within=BATCH_WITHIN_S):
                await slots.acquire()
                batch = Batch(events)
                try:
                    admit(batch)
                except Exception:
                    # A bug: nothing of this batch was sent. Release its requests (their
                    # clients get the ingress's 504) rather than stall commits and duplicates.
                    log.exception("could not admit a send batch; its requests are dropped")
                    await release(stream, batch)
                    slots.release()
                    continue
                task = asyncio.ensure_future(finish(stream, batch))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            if running:  # stopping: let the batches in flight answer (bounded)
                await asyncio.wait(running, timeout=worker.settings.send_timeout_seconds)

    def admit(batch: Batch) -> None:
        """Decode a batch and sort its requests; new ones are marked in flight."""
        generation = app.consumer_generation_id
        for event in batch.events:
            if event.message.generation_id != generation:
                # Taken before a rebalance: its partition may be another worker's now, which
                # recovered the table without our marker. Faust's own streams skip these too.
                continue
            if not isinstance(event.value, bytes):
                log.error(
                    "skipping a send request without a value at offset %d", event.message.offset
                )
                metrics.SKIPPED_EVENTS.labels("send_messages").inc()
                continue
            if event.value.startswith(EXPIRE_PREFIX):
                forget_expired(event)
                continue
            try:
                batch.decoded.append((event, SendRequest.model_validate_json(event.value)))
            except ValidationError:
                log.error(
                    "skipping malformed send request at %s[%d]@%d",
                    event.message.topic, event.message.partition, event.message.offset,
                )  # fmt: skip
                metrics.SKIPPED_EVENTS.labels("send_messages").inc()
        # Duplicates inside one batch: the first decides, the others replay its outcome.
        for _, request in batch.decoded:
            batch.firsts.setdefault(same(request), request)
        first_event = {r.request_id: e for e, r in reversed(batch.decoded)}
        timeout_s = worker.settings.send_timeout_seconds
        for event, request in batch.decoded:
            if event is first_event[request.request_id]:
                batch.deadlines[request.request_id] = send_deadline(
                    event.message, request, timeout_s
                )
        now = datetime.now(UTC)
        for request in batch.firsts.values():
            # A rocksdb:// table reads from the partition of the current event: bind the
            # request's own event before reading, or a retry is looked up in the wrong
            # partition, found new, and sent again.
            bind_event(first_event[request.request_id])
            in_progress = deciding.get(request.request_id)
            if in_progress is not None:
                # Being decided by a batch in flight: replay its outcome, or 409 for another body.
                body_hash, future = in_progress
                if body_hash == request.body_hash:
                    batch.waiting[same(request)] = future
                else:
                    batch.conflicts.append(request)
                continue
            previous = remembered(request)
            if previous is True:
                batch.conflicts.append(request)
            elif previous is not False:
                assert isinstance(previous, Outcome)
                batch.decided[same(request)] = (previous, None, False)
            else:
                # Marked in flight; ``decide`` waits for the marker to be in Kafka (acked)
                # before the Twilio create.
                batch.new.append(request)
                marker = Outcome(
                    body_hash=request.body_hash, decided_at=now, status_code=0, in_flight=True
                )
                batch.markers[request.request_id] = outcomes.put(
                    request.request_id.bytes, marker.model_dump_json().encode()
                )
                deciding[request.request_id] = (
                    request.body_hash, asyncio.get_running_loop().create_future(),
                )  # fmt: skip

    async def finish(stream: faust.StreamT, batch: Batch) -> None:
        try:
            await _decide_and_answer(batch)
        except Exception:
            # A bug, not a provider error (those are outcomes): requests left without a reply
            # get the ingress's 504, and their in-flight markers keep retries from Twilio.
            log.exception("send batch failed part-way; unanswered requests will time out")
        finally:
            await release(stream, batch)

    async def release(stream: faust.StreamT, batch: Batch) -> None:
        """Resolve what duplicates may wait on, and ack the batch's events."""
        for request in batch.new:
            _, future = deciding.pop(request.request_id)
            if not future.done():
                error = ProviderUnavailable("The message could not be sent; retry later.")
                future.set_result(_error_outcome(request, error, retry_after=5, in_flight=True))
        for event in batch.events:
            await stream.ack(event)

    async def _decide_and_answer(batch: Batch) -> None:
        new, conflicts, decided = batch.new, batch.conflicts, batch.decided
        deadlines = batch.deadlines
        results = await asyncio.gather(
            *(sender.decide(r, batch.markers[r.request_id], deadline=deadlines[r.request_id])
              for r in new),
            *(sender.decide(r, None, deadline=deadlines[r.request_id], conflict=True)
              for r in conflicts),
            return_exceptions=True,
        )  # fmt: skip
        # Retrieve every marker's result, even of requests that never awaited it.
        await asyncio.gather(*batch.markers.values(), return_exceptions=True)
        for request, result in zip([*new, *conflicts], results, strict=True):
            if isinstance(result, BaseException):
                # A bug or an unexpected library error must not stop the agent: answer 503
                # and go on.
                # Twilio may have created the message before the error: keep the request
                # marked in flight so that a retry is not sent again.
                log.error("send request %s failed", request.request_id, exc_info=result)
                error = ProviderUnavailable("The message could not be sent; retry later.")
                result = (_error_outcome(request, error, retry_after=5, in_flight=True), None)
            decided[same(request)] = (result[0], result[1], request in new)
        for request in new:
            deciding[request.request_id][1].set_result(decided[same(request)][0])
        for key, future in batch.waiting.items():
            decided[key] = (await future, None, False)
        for event, request in batch.decoded:
            outcome, opt_out, is_new = decided[same(request)]
            if request is not batch.firsts[same(request)]:
                is_new, opt_out = False, None
            metrics.send_decided(outcome.error, is_new)
            bind_event(event)
            if is_new and outcome.status_code == 503 and not outcome.in_flight:
                # Twilio did not take it: forget the request so that a retry runs it again.
                del outcomes[request.request_id.bytes]
            elif is_new:
                outcomes[request.request_id.bytes] = outcome.model_dump_json().encode()
            if opt_out is not None:
                await config_topic.send(
                    key=config_key(opt_out).encode(),
                    value=ConfigChange(entity=opt_out).model_dump_json().encode(),
                    partition=0,
                    force=True,
                )
            if outcome.record is not None:
                await created_topic.send(
                    key=outcome.record.message_sid.encode(),
                    value=outcome.record.model_dump_json().encode(),
                    force=True,
                )
            await reply_topic(request.reply_topic).send(
                key=request.correlation_id.encode(),
                value=outcome.reply(request).model_dump_json().encode(),
                force=True,
            )
