"""Reads: get by id and the newest-first, filtered, keyset-paginated listing."""

from __future__ import annotations

import base64
from datetime import timedelta, timezone
from uuid import uuid4

import pytest

from schemas.errors import InvalidRequest
from schemas.records import SmsRecord, SmsStatus
from store import InvalidCursor, Store
from store.cursor import encode_cursor
from tests.sinks.factories import BASE_TIME, make_event, next_version


def ids(records: list[SmsRecord]) -> list[object]:
    return [record.id for record in records]


def newest_first(records: list[SmsRecord]) -> list[SmsRecord]:
    return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)


async def page_through(store: Store, limit: int, **filters: object) -> list[SmsRecord]:
    seen: list[SmsRecord] = []
    cursor: str | None = None
    while True:
        page, cursor = await store.list_records(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        assert len(page) <= limit
        seen.extend(page)
        if cursor is None:
            return seen


async def test_get_unknown_id_is_none(store: Store) -> None:
    await store.upsert_records([make_event()])

    assert await store.get_record(uuid4()) is None


async def test_get_returns_the_record(store: Store) -> None:
    event = make_event(from_number="+15550001111", num_segments=2)
    await store.upsert_records([event, make_event()])

    assert await store.get_record(event.id) == event.record()


async def test_list_is_newest_first_with_id_breaking_ties(store: Store) -> None:
    same_time = [make_event(created_at=BASE_TIME) for _ in range(5)]
    others = [make_event() for _ in range(5)]
    await store.upsert_records(same_time + others)

    page, cursor = await store.list_records(limit=50)

    assert ids(page) == ids(newest_first([e.record() for e in same_time + others]))
    assert cursor is None


async def test_empty_store_lists_nothing(store: Store) -> None:
    assert await store.list_records(limit=10) == ([], None)


async def test_limit_bounds_the_page_and_only_a_fuller_store_gets_a_cursor(store: Store) -> None:
    await store.upsert_records([make_event() for _ in range(5)])

    page, cursor = await store.list_records(limit=3)
    assert len(page) == 3 and cursor is not None

    page, cursor = await store.list_records(limit=5)  # exactly all rows: no next page
    assert len(page) == 5 and cursor is None

    with pytest.raises(ValueError):
        await store.list_records(limit=0)


async def test_each_filter_alone_and_combined(store: Store) -> None:
    use_case = uuid4()
    number = "+15557654321"
    mine = [make_event(use_case_id=use_case) for _ in range(4)]
    mine_sent = [next_version(event, status=SmsStatus.SENT) for event in mine[:2]]
    to_number = [make_event(to_number=number) for _ in range(2)]
    to_number_mine = make_event(use_case_id=use_case, to_number=number)
    other = [make_event() for _ in range(3)]
    await store.upsert_records(mine + mine_sent + to_number + [to_number_mine] + other)

    async def listed(**filters: object) -> set[object]:
        page, cursor = await store.list_records(limit=100, **filters)  # type: ignore[arg-type]
        assert cursor is None
        return set(ids(page))

    assert await listed(use_case_id=use_case) == {e.id for e in [*mine, to_number_mine]}
    assert await listed(status=SmsStatus.SENT) == {e.id for e in mine_sent}
    assert await listed(status=SmsStatus.DELIVERED) == set()
    assert await listed(to_number=number) == {e.id for e in [*to_number, to_number_mine]}
    assert await listed(use_case_id=use_case, status=SmsStatus.PENDING) == {
        e.id for e in [*mine[2:], to_number_mine]
    }
    assert await listed(use_case_id=use_case, to_number=number) == {to_number_mine.id}
    assert await listed(use_case_id=uuid4()) == set()


async def test_created_after_and_before_are_exclusive_and_zone_proof(store: Store) -> None:
    events = [make_event(created_at=BASE_TIME + timedelta(minutes=m)) for m in range(6)]
    await store.upsert_records(events)
    plus_two = timezone(timedelta(hours=2))

    page, _ = await store.list_records(
        created_after=events[1].created_at.astimezone(plus_two),
        created_before=events[4].created_at,
        limit=100,
    )
    assert ids(page) == [events[3].id, events[2].id]

    page, _ = await store.list_records(created_after=events[4].created_at, limit=100)
    assert ids(page) == [events[5].id]

    # A naive bound is UTC.
    naive = events[2].created_at.replace(tzinfo=None)
    page, _ = await store.list_records(created_before=naive, limit=100)
    assert ids(page) == [events[1].id, events[0].id]


async def test_pages_cover_every_row_once_in_order(store: Store) -> None:
    ties = [make_event(created_at=BASE_TIME) for _ in range(9)]
    events = [make_event() for _ in range(13)] + ties
    await store.upsert_records(events)

    seen = await page_through(store, limit=4)

    assert ids(seen) == ids(newest_first([e.record() for e in events]))


async def test_pages_with_a_filter(store: Store) -> None:
    use_case = uuid4()
    mine = [make_event(use_case_id=use_case) for _ in range(7)]
    await store.upsert_records(mine + [make_event() for _ in range(7)])

    seen = await page_through(store, limit=3, use_case_id=use_case)

    assert ids(seen) == ids(newest_first([e.record() for e in mine]))


async def test_pagination_is_stable_while_rows_are_written(store: Store) -> None:
    start = BASE_TIME + timedelta(days=1)
    original = [make_event(created_at=start + timedelta(seconds=s // 2)) for s in range(40)]
    await store.upsert_records(original)
    written_later = []

    seen: list[SmsRecord] = []
    cursor: str | None = None
    step = 0
    while True:
        page, cursor = await store.list_records(limit=6, cursor=cursor)
        seen.extend(page)
        if cursor is None:
            break
        # Between page fetches: new rows before, after and among the rest, plus changes.
        step += 1
        batch = [
            make_event(created_at=start + timedelta(hours=1, seconds=step)),  # newer than all
            make_event(created_at=start - timedelta(hours=1, seconds=step)),  # older than all
            make_event(created_at=start + timedelta(seconds=step, microseconds=500)),
            next_version(original[step], status=SmsStatus.SENT),
        ]
        written_later.extend(batch[:3])
        await store.upsert_records(batch)

    seen_ids = ids(seen)
    assert len(seen_ids) == len(set(seen_ids)), "a row was repeated"
    assert {e.id for e in original} <= set(seen_ids), "a row was skipped"
    keys = [(r.created_at, r.id) for r in seen]
    assert keys == sorted(keys, reverse=True)
    # Rows written behind the reader's position are found; rows ahead of it are not.
    older = {e.id for e in written_later if e.created_at < start}
    assert older <= set(seen_ids)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%%",
        base64.urlsafe_b64encode(b"hello").decode(),
        base64.urlsafe_b64encode(b"1|yesterday|abc").decode(),
        base64.urlsafe_b64encode(b"9|2025-01-01T00:00:00+00:00|" + b"0" * 32).decode(),
        base64.urlsafe_b64encode(b"1|2025-01-01T00:00:00|" + b"0" * 32).decode(),  # naive
        base64.urlsafe_b64encode(b"1|2025-01-01T00:00:00+00:00|xyz").decode(),
        "A" * 500,
        "\u00e9t\u00e9",
    ],
)
async def test_a_malformed_cursor_is_rejected(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidCursor) as caught:
        await store.list_records(limit=5, cursor=cursor)

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InvalidRequest)
    assert caught.value.status_code == 422 and "cursor" in caught.value.detail


async def test_a_cursor_is_opaque_urlsafe_and_round_trips(store: Store) -> None:
    events = [make_event() for _ in range(3)]
    await store.upsert_records(events)

    _, cursor = await store.list_records(limit=1)

    assert cursor is not None
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    last = newest_first([e.record() for e in events])[0]
    assert cursor == encode_cursor(last.created_at, last.id)


async def test_list_keeps_only_the_use_cases_of_a_scope(store: Store) -> None:
    mine, theirs, other = uuid4(), uuid4(), uuid4()
    events = [make_event(use_case_id=u) for u in (mine, theirs, other, mine)]
    await store.upsert_records(events)

    scoped = await page_through(store, 1, use_case_ids=frozenset({mine, theirs}))
    assert sorted(map(str, ids(scoped))) == sorted(str(e.id) for e in events[:2] + events[3:])
    inside, _ = await store.list_records(use_case_id=mine, use_case_ids={mine, theirs})
    assert {r.use_case_id for r in inside} == {mine} and len(inside) == 2
    outside, _ = await store.list_records(use_case_id=other, use_case_ids={mine})
    assert outside == []
    nothing, _ = await store.list_records(use_case_ids=frozenset())
    assert nothing == []
