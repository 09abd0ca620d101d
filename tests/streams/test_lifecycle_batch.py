"""The lifecycle agent's batch writes: one write per key per batch, each with its owner bound."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from schemas.records import SmsStatus
from schemas.topics import Topics
from streams.lifecycle.batch import WriteBehind
from streams.lifecycle.processor import LifecycleProcessor, Source
from streams.lifecycle.tables import RECORDS, HeldTable, RecordTable
from tests.streams.factories import MESSAGE_SID, create_record
from tests.streams.test_lifecycle_processor import RULES, At, ListPublisher, callback, sample

SID = MESSAGE_SID.encode()


@dataclass
class CountingTable(dict[bytes, bytes]):
    """A dict that counts its writes and deletions and remembers who was bound for each."""

    bound: list[str] = field(default_factory=list)
    writes: list[tuple[str, bytes, str]] = field(default_factory=list)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append(("put", key, self.bound[-1]))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.writes.append(("delete", key, self.bound[-1]))
        super().__delitem__(key)


def write_behind() -> tuple[CountingTable, WriteBehind[str]]:
    table = CountingTable()
    return table, WriteBehind(table, table.bound.append)


def test_a_batch_writes_each_key_once_with_its_last_value_and_owner() -> None:
    table, batch = write_behind()
    batch.own("event-1")
    batch[b"a"] = b"1"
    batch.own("event-2")
    batch[b"b"] = b"x"
    batch.own("event-3")
    batch[b"a"] = b"2"
    assert batch.get(b"a") == b"2"  # reads see the batch's own writes
    assert table.writes == [] and batch.pending == 2
    batch.flush()
    assert table.writes == [("put", b"a", "event-3"), ("put", b"b", "event-2")]
    assert dict(table) == {b"a": b"2", b"b": b"x"}
    assert batch.pending == 0


def test_a_key_written_then_deleted_in_one_batch_never_reaches_the_table() -> None:
    table, batch = write_behind()
    batch.own("event-1")
    batch[b"a"] = b"1"
    del batch[b"a"]
    assert batch.get(b"a") is None
    batch.flush()
    assert table.writes == [] and dict(table) == {}


def test_a_deletion_of_a_stored_key_reaches_the_table() -> None:
    table, batch = write_behind()
    dict.__setitem__(table, b"a", b"1")
    batch.own("event-9")
    assert batch.get(b"a") == b"1"
    del batch[b"a"]
    batch.flush()
    assert table.writes == [("delete", b"a", "event-9")] and dict(table) == {}


class FailingTable(CountingTable):
    """Refuses to write one key."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if key == b"bad":
            raise OSError("disk full")
        super().__setitem__(key, value)


def test_a_failed_write_is_counted_and_the_other_keys_still_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = FailingTable()
    batch: WriteBehind[str] = WriteBehind(table, table.bound.append)
    skipped = sample("smslane_worker_skipped_events_total", agent="track_lifecycle")
    batch.own("event-1")
    batch[b"bad"] = b"1"
    batch[b"good"] = b"2"
    batch.flush()
    assert dict(table) == {b"good": b"2"}
    assert sample("smslane_worker_skipped_events_total", agent="track_lifecycle") == skipped + 1
    assert "could not write sid=bad" in caplog.text


def test_a_write_outside_a_batch_is_refused() -> None:
    _, batch = write_behind()
    batch.own("event-1")
    batch[b"a"] = b"1"
    batch.flush()
    with pytest.raises(RuntimeError):
        batch[b"b"] = b"2"


class Batch:
    """A processor over two write-behind tables, fed events as the agent feeds a batch."""

    def __init__(self) -> None:
        self.records, records = write_behind()
        self.held, held = write_behind()
        self.tables = (records, held)
        self.published = ListPublisher()
        self.processor = LifecycleProcessor(
            RecordTable(records), HeldTable(held), RULES, self.published
        )

    async def run(self, *events: tuple[Source, bytes]) -> None:
        for n, (source, value) in enumerate(events):
            for table in self.tables:
                table.own(f"event-{n}")
            await self.processor.process(source, SID, value, At())
        for table in self.tables:
            table.flush()


CREATED: tuple[Source, bytes] = ("created", Topics.CREATED.codec.encode(create_record()))


def status_callback(status: str, seconds: float) -> tuple[Source, bytes]:
    return "callback", Topics.CALLBACKS.codec.encode(callback(status, seconds))


async def test_created_sent_and_delivered_in_one_batch_make_one_record_write() -> None:
    batch = Batch()
    await batch.run(CREATED, status_callback("sent", 1), status_callback("delivered", 2))
    assert batch.published.versions() == [
        (1, SmsStatus.PENDING), (2, SmsStatus.SENT), (3, SmsStatus.DELIVERED)
    ]  # fmt: skip
    assert batch.records.writes == [("put", SID, "event-2")]
    assert RECORDS.decode(batch.records[SID]).version == 3
    assert batch.held.writes == []


async def test_callbacks_held_and_applied_in_one_batch_leave_the_hold_untouched() -> None:
    batch = Batch()
    await batch.run(status_callback("sent", 1), CREATED)
    assert batch.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.SENT)]
    assert batch.held.writes == [] and dict(batch.held) == {}
    assert batch.records.writes == [("put", SID, "event-1")]


async def test_the_next_batch_reads_what_the_last_one_wrote() -> None:
    batch = Batch()
    await batch.run(CREATED)
    await batch.run(status_callback("delivered", 2))
    assert batch.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.DELIVERED)]
    assert [w[2] for w in batch.records.writes] == ["event-0", "event-0"]
    assert RECORDS.decode(batch.records[SID]).version == 2
