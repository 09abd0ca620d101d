"""The lifecycle tables' typed wrappers over plain dicts: codecs, heads, snapshots, counts."""

from __future__ import annotations

from uuid import uuid4

from schemas.events import RawCallback
from schemas.records import SmsStatus
from streams.lifecycle.tables import HELD, Held, HeldTable, LifecycleState, RecordHead, RecordTable
from tests.streams.factories import MESSAGE_SID, T0, at, create_record

SID = MESSAGE_SID.encode()


def callback(status: str, seconds: float) -> RawCallback:
    params = {"MessageSid": MESSAGE_SID, "MessageStatus": status}
    return RawCallback(receipt_id=uuid4(), received_at=at(seconds), params=params)


def test_a_record_head_reads_the_same_status_and_time_as_the_whole_state() -> None:
    table: dict[bytes, bytes] = {}
    records = RecordTable(table)
    record = create_record(status=SmsStatus.UNDELIVERED, updated_at=at(5), error_code=30003)
    records.put(SID, LifecycleState(record=record, version=4, last_receipt="r"))
    assert records.head(SID) == RecordHead(status=SmsStatus.UNDELIVERED, updated_at=at(5))
    assert records.get(SID) == LifecycleState(record=record, version=4, last_receipt="r")
    assert list(records.scan_heads()) == [(SID, records.head(SID))]
    table[b"SMbad"] = b"[]"
    assert records.head(b"SMbad") is None and records.head(b"SMnone") is None
    assert records.count_by_status() == {SmsStatus.UNDELIVERED: 1}


def test_the_held_count_is_set_from_the_table_by_each_scan() -> None:
    entry = HELD.encode(Held(since=T0, callbacks=(callback("sent", 0),)))
    table = {b"SM1": entry, b"SM2": entry, b"SM3": b"{broken"}
    held = HeldTable(table)  # as after a restart: the table is there, the count is not
    assert len(held) == 0
    assert [sid for sid, _ in held.scan()] == [b"SM1", b"SM2"]
    assert len(held) == 3
    assert held.pop(b"SM1") == HELD.decode(entry).callbacks and held.pop(b"SM1") == ()
    assert len(held) == 2 and b"SM1" not in table
