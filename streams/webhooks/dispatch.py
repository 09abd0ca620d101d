"""Attempts at the lanes that are due: sign, POST, publish the outcome.

The dispatcher never writes the lanes table (a Faust table is written only while its agent
handles an event of that key): every outcome goes back through ``sms.webhook-lanes`` with the
lane's key, and the agent applies it. Until it has, the lane stays *in flight* here, so a
tick does not attempt the same head twice. Each endpoint has at most ``max_per_endpoint``
attempts running: a slow or dead endpoint waits on its own slots, and its backlog stays in
the table, not in tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from feeds.config import ConfigView
from feeds.secret_box import SecretBox, Undecryptable
from schemas.config import WebhookEndpoint
from schemas.webhook_signature import sign
from schemas.webhooks import LaneOutcome
from streams.webhooks.health import FailureWatch
from streams.webhooks.http import AttemptResult, WebhookClient
from streams.webhooks.lanes import Lane

log = logging.getLogger(__name__)

Publish = Callable[[bytes, LaneOutcome], Awaitable[None]]
Disable = Callable[[WebhookEndpoint], Awaitable[None]]
#: Reads a lane from the table (None: there is none).
Load = Callable[[bytes], Lane | None]
#: An in-flight mark older than this (seconds past the timeout) is forgotten: its outcome
#: was lost (a rebalance took the partition away and gave it back).
STALE_AFTER_S = 60.0
#: Due lanes of one endpoint kept as candidates, at most (the rest wait for the next tick).
MAX_CANDIDATES = 1000


def secrets_in_force(endpoint: WebhookEndpoint, box: SecretBox, now: datetime) -> list[str]:
    """The endpoint's secrets that sign now, in clear (the current one first)."""
    return [
        box.open(secret.sealed)
        for secret in endpoint.secrets
        if secret.expires_at is None or secret.expires_at > now
    ]


class Dispatcher:
    """Starts the attempts that are due and publishes how they ended."""

    def __init__(
        self,
        config: ConfigView,
        box: SecretBox,
        client: WebhookClient,
        publish: Publish,
        disable: Disable,
        load: Load,
        *,
        max_per_endpoint: int,
        timeout_s: float,
        disable_after: timedelta,
    ) -> None:
        self._config, self._box, self._client, self._publish = config, box, client, publish
        self._disable, self._watch = disable, FailureWatch(disable_after)
        self._load = load
        self._max_per_endpoint = max_per_endpoint
        self._stale_s = timeout_s + STALE_AFTER_S
        #: Lane key → (head event id, monotonic start) of attempts not yet applied.
        self._in_flight: dict[bytes, tuple[str, float]] = {}
        self._running: Counter[uuid.UUID] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Keys of due lanes not started yet, per endpoint.
        self._candidates: dict[uuid.UUID, deque[bytes]] = {}

    def start_due(self, due: Iterable[tuple[bytes, uuid.UUID]]) -> int:
        """Take the lanes due (key, endpoint) as each endpoint's candidates and start as many
        as its free slots allow; how many were started. As each attempt ends, the next
        candidate of its endpoint starts, so an endpoint's pace is its receiver's, not this
        call's interval. A candidate's lane is read from the table when it starts."""
        candidates: defaultdict[uuid.UUID, deque[bytes]] = defaultdict(deque)
        for key, endpoint_id in due:
            waiting = candidates[endpoint_id]
            mark = self._in_flight.get(key)
            fresh_mark = mark is not None and time.monotonic() - mark[1] < self._stale_s
            if len(waiting) < MAX_CANDIDATES and not fresh_mark:
                waiting.append(key)
        self._candidates = candidates
        return sum(self._fill(endpoint_id) for endpoint_id in list(candidates))

    def _fill(self, endpoint_id: uuid.UUID) -> int:
        """Start candidates of ``endpoint_id`` while it has free slots."""
        waiting = self._candidates.get(endpoint_id)
        started = 0
        while waiting and self._running[endpoint_id] < self._max_per_endpoint:
            endpoint = self._config.webhook_endpoints.get(endpoint_id)
            if endpoint is not None and not endpoint.enabled:
                return started  # its events wait until it is enabled again
            key = waiting.popleft()
            lane = self._load(key)
            if lane is None or lane.next_attempt_at > datetime.now(UTC):
                continue  # delivered or rescheduled since the index said it was due
            if self._in_flight_at(key, lane):
                continue
            self._in_flight[key] = (lane.head.event_id, time.monotonic())
            self._running[endpoint_id] += 1
            task = asyncio.create_task(self._attempt(key, lane, endpoint))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    def _in_flight_at(self, key: bytes, lane: Lane) -> bool:
        """Whether an attempt at this lane's head is under way (or its outcome not applied)."""
        mark = self._in_flight.get(key)
        if mark is None:
            return False
        if mark[0] == lane.head.event_id and time.monotonic() - mark[1] < self._stale_s:
            return True
        del self._in_flight[key]
        return False

    def settled(self, key: bytes, event_id: str) -> None:
        """The agent applied the outcome of ``event_id`` on lane ``key``."""
        mark = self._in_flight.get(key)
        if mark is not None and mark[0] == event_id:
            del self._in_flight[key]

    async def _attempt(self, key: bytes, lane: Lane, endpoint: WebhookEndpoint | None) -> None:
        try:
            outcome = await self._outcome(lane, endpoint)
            await self._publish(key, outcome)
            if (
                endpoint is not None
                and not outcome.gone
                and self._watch.note(endpoint.id, outcome.ok, outcome.at)
            ):
                await self._disable(endpoint)
        except Exception:
            log.exception("webhook attempt on lane %s failed unexpectedly", key.decode())
            self._in_flight.pop(key, None)
        finally:
            self._running[lane.endpoint_id] -= 1
            self._fill(lane.endpoint_id)

    async def _outcome(self, lane: Lane, endpoint: WebhookEndpoint | None) -> LaneOutcome:
        head = lane.head
        fields = {"endpoint_id": lane.endpoint_id, "event_id": head.event_id}
        if endpoint is None:
            return LaneOutcome(**fields, ok=False, gone=True, at=datetime.now(UTC))
        try:
            secrets = secrets_in_force(endpoint, self._box, datetime.now(UTC))
        except Undecryptable:
            log.error(
                "webhook endpoint %s: its secret decrypts with none of SMSLANE_SECRET_KEYS",
                endpoint.id, extra={"endpoint_id": str(endpoint.id)},
            )  # fmt: skip
            result = AttemptResult(ok=False, error="the endpoint's secret cannot be decrypted")
        else:
            body = head.body.encode()
            result = await self._client.post(
                endpoint.url, body, sign(secrets, int(time.time()), body)
            )
        return LaneOutcome(
            **fields,
            ok=result.ok,
            status_code=result.status_code,
            error=result.error,
            response_head=result.response_head,
            at=datetime.now(UTC),
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
