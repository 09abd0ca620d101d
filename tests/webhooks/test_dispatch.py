"""The dispatcher alone (no Kafka, no HTTP): slots per endpoint, no second attempt at a head
in flight, deleted and disabled endpoints."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from feeds.config import ConfigView
from feeds.secret_box import SecretBox, new_key
from schemas.config import WebhookSecret
from schemas.webhooks import LaneOutcome
from streams.webhooks.dispatch import Dispatcher
from streams.webhooks.http import AttemptResult
from streams.webhooks.index import LaneIndex
from streams.webhooks.lanes import Lane, enqueue
from tests.webhooks.test_rules import endpoint, orders

NOW = datetime.now(UTC)


class FakeClient:
    """Answers each POST once ``release`` is set (or at once), recording the URLs."""

    def __init__(self, *, hold: bool = False) -> None:
        self.posted: list[str] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def post(self, url: str, body: bytes, signature: str) -> AttemptResult:
        self.posted.append(url)
        await self.release.wait()
        return AttemptResult(ok=True, status_code=200)


class Harness:
    def __init__(self, client: FakeClient, max_per_endpoint: int = 2) -> None:
        self.box = SecretBox([new_key()])
        self.config = ConfigView(self.box)
        self.outcomes: list[tuple[bytes, LaneOutcome]] = []
        #: The lanes table.
        self.table: dict[bytes, Lane] = {}
        self.dispatcher = Dispatcher(
            self.config, self.box, client, self.publish, self.disable,  # type: ignore[arg-type]
            self.table.get,
            max_per_endpoint=max_per_endpoint, timeout_s=1.0, disable_after=timedelta(hours=72),
        )  # fmt: skip

    async def publish(self, key: bytes, outcome: LaneOutcome) -> None:
        self.outcomes.append((key, outcome))

    async def disable(self, _: object) -> None:
        raise AssertionError("not in these tests")

    def endpoint(self, **fields: object) -> uuid.UUID:
        made = endpoint(secrets=(WebhookSecret(sealed=self.box.seal("whsec_x")),), **fields)
        self.config.webhook_endpoints[made.id] = made
        return made.id

    def lanes(self, endpoint_id: uuid.UUID, count: int) -> list[tuple[bytes, uuid.UUID]]:
        """``count`` lanes of ``endpoint_id`` due now, put in the table; their index entries."""
        found = []
        for n, order in enumerate(orders([1] * count)):
            lane, _ = enqueue(None, order.model_copy(update={"endpoint_id": endpoint_id}), NOW)
            assert lane is not None
            key = f"{endpoint_id}:{n}".encode()
            self.table[key] = lane
            found.append((key, endpoint_id))
        return found


async def settle(tasks: int = 20) -> None:
    for _ in range(tasks):
        await asyncio.sleep(0)


async def test_each_endpoint_has_its_own_slots() -> None:
    client = FakeClient(hold=True)
    harness = Harness(client, max_per_endpoint=2)
    dead = harness.endpoint(url="https://dead.example/x")
    live = harness.endpoint(url="https://live.example/x")
    lanes = harness.lanes(dead, 5) + harness.lanes(live, 1)
    assert harness.dispatcher.start_due(lanes) == 3
    await settle()
    assert sorted(client.posted) == ["https://dead.example/x"] * 2 + ["https://live.example/x"]
    client.release.set()
    await settle()
    assert len(client.posted) == 6, "each finished attempt started its endpoint's next"
    await harness.dispatcher.close()


async def test_a_head_in_flight_is_not_attempted_again_until_its_outcome_is_applied() -> None:
    client = FakeClient()
    harness = Harness(client)
    target = harness.endpoint()
    due = harness.lanes(target, 1)
    ((key, _),) = due
    harness.dispatcher.start_due(due)
    await settle()
    assert len(harness.outcomes) == 1
    assert harness.dispatcher.start_due(due) == 0, "outcome not applied yet"
    harness.dispatcher.settled(key, harness.table[key].head.event_id)
    del harness.table[key]  # delivered: the agent removed the lane
    assert harness.dispatcher.start_due(due) == 0, "the index was behind: nothing to do"
    assert harness.dispatcher.start_due(harness.lanes(target, 1)) == 1
    await harness.dispatcher.close()


async def test_not_due_disabled_and_deleted_endpoints() -> None:
    client = FakeClient()
    harness = Harness(client)
    disabled = harness.endpoint(enabled=False)
    later = harness.lanes(harness.endpoint(), 1)
    ((later_key, _),) = later
    harness.table[later_key] = harness.table[later_key].model_copy(
        update={"next_attempt_at": datetime.now(UTC) + timedelta(hours=1)}
    )
    assert harness.dispatcher.start_due([*harness.lanes(disabled, 1), *later]) == 0
    gone = harness.lanes(uuid.uuid4(), 1)
    assert harness.dispatcher.start_due(gone) == 1
    await settle()
    ((_, outcome),) = harness.outcomes
    assert outcome.gone and client.posted == []
    await harness.dispatcher.close()


def test_the_lane_index_follows_the_writes_and_is_rebuilt_after_a_rebalance() -> None:
    harness = Harness(FakeClient())
    target = harness.endpoint()
    due = harness.lanes(target, 2)
    (first, _), (second, _) = due
    index = LaneIndex()
    assert index.stale(generation=1)
    index.rebuild(harness.table.items(), generation=1)
    assert not index.stale(generation=1) and index.stale(generation=2)
    assert sorted(index.due(NOW)) == sorted(due)
    later = harness.table[first].model_copy(update={"next_attempt_at": NOW + timedelta(hours=1)})
    index.put(first, later)
    index.put(second, None)
    assert index.due(NOW) == [] and list(index.entries) == [first]
    assert index.due(NOW + timedelta(hours=1)) == [(first, target)]
