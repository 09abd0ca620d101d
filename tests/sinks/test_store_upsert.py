"""Writes: idempotent, version-ordered, batched upserts (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta, timezone

from schemas.records import SmsStatus
from store import Store
from tests.sinks.factories import expected_rows, lifecycle, make_event, next_version
from tests.sinks.helpers import dump_rows


async def test_new_records_are_inserted(store: Store) -> None:
    events = [make_event() for _ in range(3)]

    assert await store.upsert_records(events) == 3

    assert await dump_rows(store) == expected_rows(events)


async def test_empty_batch_changes_nothing(store: Store) -> None:
    assert await store.upsert_records([]) == 0


async def test_a_repeated_event_changes_nothing(store: Store) -> None:
    event = make_event()
    await store.upsert_records([event])

    assert await store.upsert_records([event]) == 0
    assert await store.upsert_records([event, event]) == 0
    assert await dump_rows(store) == expected_rows([event])


async def test_a_newer_version_replaces_every_field(store: Store) -> None:
    created, sent, delivered = lifecycle(make_event())
    await store.upsert_records([created])

    assert await store.upsert_records([sent]) == 1
    assert await store.upsert_records([delivered]) == 1

    assert await store.get_record(created.id) == delivered.record()
    assert await dump_rows(store) == {created.id: (delivered.record(), 3)}


async def test_an_older_version_never_overwrites_a_newer_one(store: Store) -> None:
    created, sent, delivered = lifecycle(make_event())
    await store.upsert_records([delivered])

    assert await store.upsert_records([sent]) == 0
    assert await store.upsert_records([created, sent]) == 0

    assert await store.get_record(created.id) == delivered.record()


async def test_several_versions_in_one_batch_collapse_to_the_highest(store: Store) -> None:
    created, sent, delivered = lifecycle(make_event())

    assert await store.upsert_records([sent, delivered, created]) == 1

    assert await dump_rows(store) == {created.id: (delivered.record(), 3)}


async def test_out_of_order_batches_converge_on_the_highest_version(store: Store) -> None:
    histories = [lifecycle(make_event()) for _ in range(20)]
    newest_first = [event for history in histories for event in reversed(history)]

    for event in newest_first:
        await store.upsert_records([event])

    assert await dump_rows(store) == expected_rows(newest_first)


async def test_mixed_batch_counts_only_rows_that_changed(store: Store) -> None:
    old, newer = make_event(), make_event()
    await store.upsert_records([old, newer, next_version(newer)])
    fresh = make_event()

    changed = await store.upsert_records([old, next_version(old), newer, fresh])

    assert changed == 2  # old moved to v2, fresh inserted; newer (v1 < stored v2) ignored
    rows = await dump_rows(store)
    assert rows[old.id][1] == 2 and rows[newer.id][1] == 2 and rows[fresh.id][1] == 1


async def test_a_large_batch_is_written_whole(store: Store) -> None:
    # More rows than one multi-row INSERT page: still one call, every row written.
    events = [make_event() for _ in range(2500)]
    update = [next_version(event, status=SmsStatus.SENT) for event in events[:1000]]

    assert await store.upsert_records(events) == 2500
    assert await store.upsert_records(update + events) == 1000

    assert await dump_rows(store) == expected_rows(events + update)


async def test_datetimes_come_back_aware_utc_and_equal(store: Store) -> None:
    plus_five = timezone(timedelta(hours=5))
    event = make_event()
    local = next_version(
        event,
        status=SmsStatus.FAILED,
        error_code=30008,
        errored_at=event.created_at.astimezone(plus_five),
        updated_at=event.updated_at.astimezone(plus_five) + timedelta(microseconds=7),
    )
    await store.upsert_records([local])

    record = await store.get_record(event.id)

    assert record is not None
    assert record == local.record()
    for stamp in (record.created_at, record.updated_at, record.errored_at):
        assert stamp is not None and stamp.utcoffset() == timedelta(0)
    assert record.updated_at.microsecond == (event.updated_at.microsecond + 7) % 1_000_000
