"""The configuration every process works from, read from the compacted config topic.

The admin API writes one record per entity (subaccount, brand, use case, sender number,
opt-out, API key, webhook endpoint) to a compacted topic with one partition. Every process
that needs the configuration (each ingress, each worker) runs a :class:`ConfigFeed`: it reads
that topic from its first offset at every start into a :class:`ConfigView`, counts as *caught
up* once it has read to the end offset the broker gave at start, and then follows new records.
Nothing is kept on disk, so a restarted process is complete again as soon as it has read the
topic; no callback of a Faust table is involved (a GlobalTable replays nothing on a restart
with persisted offsets).

``wait_for(offset)`` is the read-your-writes rule: a send carries the config offset its
ingress had applied or written, and the worker checks it only once it has applied as much.

``confirmed_within(seconds)`` is the freshness rule of API keys: the feed notes the last
time it knew it had applied everything the topic held (it asks the broker for the end
offset about once a second), so an ingress that cannot confirm it would have seen a
revocation refuses the keys it read from the topic instead of trusting a stale view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from feeds import kafka_clients
from feeds.api_keys import ApiKeyIndex
from feeds.secret_box import VARIABLE, SecretBox, Undecryptable
from schemas.config import (
    ApiKey,
    Brand,
    ConfigChange,
    OptOut,
    OptOutSource,
    SealedSubaccount,
    SenderNumber,
    Subaccount,
    UseCase,
    WebhookEndpoint,
    parse_opt_out_key,
)
from schemas.settings import Settings

log = logging.getLogger(__name__)


class ConfigView:
    """Typed, indexed configuration, updated one record of the config topic at a time.

    Subaccount records are opened with ``box`` as they are applied: :attr:`subaccounts`
    holds the auth tokens in clear, in memory only. A subaccount whose token no key opens is
    in :attr:`undecryptable` instead (its sends answer 503, its webhooks 403). Without a
    ``box`` only records written before tokens were sealed can be read.
    """

    def __init__(self, box: SecretBox | None = None) -> None:
        self._box = box
        self.subaccounts: dict[str, Subaccount] = {}
        #: Subaccounts whose stored auth token none of SMSLANE_SECRET_KEYS decrypts, by SID.
        self.undecryptable: dict[str, SealedSubaccount] = {}
        self._clear_logged: set[str] = set()
        self.brands: dict[str, Brand] = {}
        self.use_cases: dict[UUID, UseCase] = {}
        self.senders: defaultdict[UUID, dict[str, SenderNumber]] = defaultdict(dict)
        #: Use case → number → source → opt-out (one number may have one of each source).
        self.opt_outs: defaultdict[UUID, dict[str, dict[OptOutSource, OptOut]]] = defaultdict(dict)
        self.api_keys = ApiKeyIndex()
        #: Webhook endpoints by id, their secrets sealed.
        self.webhook_endpoints: dict[UUID, WebhookEndpoint] = {}
        self.applied_offset = -1
        #: ``time.monotonic()`` of the last moment the view held the whole topic (None: never).
        self.confirmed_at: float | None = None
        #: Set once the feed has read the topic to the end it had at start.
        self.caught_up = asyncio.Event()
        #: Why the feed is not caught up (for logs and readiness); None when it is fine.
        self.problem: str | None = "the configuration has not been read yet"
        self._changed = asyncio.Condition()

    def apply(self, key: str, value: bytes | None, offset: int) -> None:
        """Apply one record of the compacted topic (``value`` None deletes ``key``)."""
        self.applied_offset = max(self.applied_offset, offset)
        if value is None:
            self._delete(key)
            return
        try:
            entity = ConfigChange.model_validate_json(value).entity
        except ValidationError:
            log.warning("skipping malformed config record key=%s offset=%d", key, offset)
            return
        match entity:
            case SealedSubaccount():
                self._apply_subaccount(entity)
            case Brand():
                self.brands[entity.brand_id] = entity
            case UseCase():
                known = self.use_cases.get(entity.id)
                if known is not None and known.deleted and not entity.deleted:
                    return  # deleted for good: a racing stale update cannot revive it
                self.use_cases[entity.id] = entity
            case SenderNumber():
                self.senders[entity.use_case_id][entity.phone_number] = entity
            case OptOut():
                numbers = self.opt_outs[entity.use_case_id]
                numbers.setdefault(entity.phone_number, {})[entity.source] = entity
            case ApiKey():
                self.api_keys.put(entity)
            case WebhookEndpoint():
                self.webhook_endpoints[entity.id] = entity

    def _apply_subaccount(self, sealed: SealedSubaccount) -> None:
        sid = sealed.account_sid
        self.undecryptable.pop(sid, None)
        token = self._open(sealed)
        if token is None:
            self.subaccounts.pop(sid, None)
            self.undecryptable[sid] = sealed
            return
        self.subaccounts[sid] = Subaccount(
            account_sid=sid,
            auth_token=token,
            friendly_name=sealed.friendly_name,
            created_at=sealed.created_at,
            updated_at=sealed.updated_at,
        )

    def _open(self, sealed: SealedSubaccount) -> str | None:
        """The auth token in clear, or None (logged, naming the subaccount) if no key opens it."""
        sid = sealed.account_sid
        if sealed.sealed_auth_token is None:  # written before tokens were sealed
            if sid not in self._clear_logged:
                self._clear_logged.add(sid)
                log.warning(
                    "subaccount %s: its auth token is stored in clear (written before "
                    "encryption); run `smslane secrets rotate` to seal it",
                    sid, extra={"account_sid": sid},
                )  # fmt: skip
            return sealed.auth_token
        try:
            if self._box is None:
                raise Undecryptable("no keys")
            return self._box.open(sealed.sealed_auth_token)
        except Undecryptable:
            log.error(
                "subaccount %s: its auth token decrypts with none of the keys in %s; its sends "
                "answer 503 and its webhooks 403 until that key is added or the token is put "
                "again", sid, VARIABLE, extra={"account_sid": sid},
            )  # fmt: skip
            return None

    def _delete(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if kind == "sender_number":
            use_case, _, number = rest.partition(":")
            try:
                self.senders[UUID(use_case)].pop(number, None)
            except ValueError:
                return
        elif kind == "opt_out":
            self._delete_opt_out(rest)
        elif kind == "subaccount":
            self.subaccounts.pop(rest, None)
            self.undecryptable.pop(rest, None)
        elif kind == "brand":
            self.brands.pop(rest, None)
        elif kind == "api_key":
            self.api_keys.remove_named(rest)
        elif kind == "webhook_endpoint":
            with contextlib.suppress(ValueError):
                self.webhook_endpoints.pop(UUID(rest), None)

    def confirmed_within(self, seconds: float) -> bool:
        """Whether, less than ``seconds`` ago, the view held every record the topic had."""
        confirmed = self.confirmed_at
        return confirmed is not None and time.monotonic() - confirmed < seconds

    def _delete_opt_out(self, rest: str) -> None:
        parsed = parse_opt_out_key(rest)
        if parsed is None:
            return
        use_case_id, number, source = parsed
        numbers = self.opt_outs.get(use_case_id, {})
        sources = numbers.get(number, {})
        sources.pop(source, None)
        if not sources:
            numbers.pop(number, None)

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, offset: int, timeout_s: float) -> bool:
        """Wait until the view is caught up and ``offset`` is applied; False on timeout."""
        if self.caught_up.is_set() and self.applied_offset >= offset:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self.caught_up.wait()
                async with self._changed:
                    await self._changed.wait_for(lambda: self.applied_offset >= offset)
            return True
        except TimeoutError:
            log.warning(
                "configuration offset %d not applied within %.1fs (at %d%s)",
                offset,
                timeout_s,
                self.applied_offset,
                "" if self.caught_up.is_set() else f"; {self.problem}",
            )
            return False

    def sender_list(self, use_case_id: UUID) -> list[SenderNumber]:
        return list(self.senders.get(use_case_id, {}).values())

    def opted_out(self, use_case_id: UUID, number: str) -> bool:
        """Whether ``number`` opted out of ``use_case_id``, by any source."""
        return bool(self.opt_outs.get(use_case_id, {}).get(number))

    def opt_outs_of(self, use_case_id: UUID) -> list[OptOut]:
        """Every opt-out of ``use_case_id``, by number then source."""
        numbers = self.opt_outs.get(use_case_id, {})
        return [
            opt_out for number in sorted(numbers) for _, opt_out in sorted(numbers[number].items())
        ]

    def number_opt_outs(self, use_case_id: UUID, number: str) -> dict[OptOutSource, OptOut]:
        """The opt-outs of ``number`` from ``use_case_id``, by source (a copy)."""
        return dict(self.opt_outs.get(use_case_id, {}).get(number, {}))

    def use_cases_of_service(self, account_sid: str, messaging_service_sid: str) -> list[UseCase]:
        """The use cases (not deleted) sending through this subaccount's Messaging Service,
        oldest first."""
        found = [
            use_case
            for use_case in self.use_cases.values()
            if not use_case.deleted
            and use_case.account_sid == account_sid
            and use_case.messaging_service_sid == messaging_service_sid
        ]
        return sorted(found, key=lambda use_case: (use_case.created_at, str(use_case.id)))


class ConfigFeed:
    """Reads the config topic from its beginning into ``view``, then follows it."""

    def __init__(self, settings: Settings, topic: str, view: ConfigView) -> None:
        self.view = view
        self._tp = TopicPartition(topic, 0)
        self._settings, self._timeout_s = settings, settings.kafka_timeout_seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._end = 0

    async def start(self) -> None:
        """Connect, take the topic's end offset and start reading from offset 0.

        Raises the client's error when the broker cannot be reached (callers retry).
        """
        consumer = kafka_clients.consumer(
            self._settings,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=int(max(self._timeout_s, 1.0) * 1000) + 1000,
        )
        await consumer.start()
        try:
            consumer.assign([self._tp])
            await consumer.seek_to_beginning(self._tp)
            self._end = (await consumer.end_offsets([self._tp]))[self._tp]
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self.view.problem = f"reading the configuration (0 of {self._end} offsets)"
        if self._end == 0:
            self._mark_caught_up()
        self._task = asyncio.create_task(self._follow(consumer), name="config-feed")

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Wait until the topic has been read to its end at start; False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.view.caught_up.wait()
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    def _mark_caught_up(self) -> None:
        if not self.view.caught_up.is_set():
            self.view.caught_up.set()
            self.view.problem = None
            log.info(
                "configuration loaded: %d use case(s), %d subaccount(s), up to offset %d",
                len(self.view.use_cases), len(self.view.subaccounts), self.view.applied_offset,
            )  # fmt: skip

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            asked_at = time.monotonic()
            try:
                batches = await consumer.getmany(self._tp, timeout_ms=1000, max_records=1000)
                position = await consumer.position(self._tp)
                end = (await consumer.end_offsets([self._tp]))[self._tp]
            except KafkaError as exc:  # the client reconnects by itself; keep reading
                self._note_problem(f"reading the config topic failed ({type(exc).__name__})")
                await asyncio.sleep(0.5)
                continue
            for record in batches.get(self._tp, ()):
                self._apply(record)
            if position >= end:
                # Every record written before ``asked_at`` is below ``end``, so applied.
                self.view.confirmed_at = asked_at
            if not self.view.caught_up.is_set():
                if position >= self._end:
                    self._mark_caught_up()
                else:
                    self.view.problem = (
                        f"reading the configuration ({position} of {self._end} offsets)"
                    )
            if batches:
                await self.view.notify()

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            key = record.key.decode() if record.key else ""
        except UnicodeDecodeError:
            log.warning("skipping config record with a non-UTF-8 key at offset %d", record.offset)
            self.view.applied_offset = max(self.view.applied_offset, record.offset)
            return
        self.view.apply(key, record.value, record.offset)

    def _note_problem(self, problem: str) -> None:
        if not self.view.caught_up.is_set():
            self.view.problem = problem
        log.warning("%s; retrying", problem)
