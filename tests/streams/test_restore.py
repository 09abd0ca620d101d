"""The bulk restore of RocksDB tables from their changelogs, on a real broker and real files.

What Faust's recovery reads afterwards is checked through Faust's own store
(``persisted_offset``, the partition files): a restore that wrote another format or another
offset would make Faust replay everything again, or skip what it must not.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from faust.types import TP

from schemas.settings import Settings
from streams.restore import TableRestore, ahead_of_changelog, discard_unassigned
from streams.tables import ChangelogTable, changelog_table

pytestmark = pytest.mark.integration


@pytest.fixture
def table(tmp_path: Path, kafka_bootstrap: str) -> ChangelogTable:
    app = faust.App(
        f"restore-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}",
        store="rocksdb://", datadir=str(tmp_path), autodiscover=False,
    )  # fmt: skip
    return changelog_table(app, "things", key_type=bytes, value_type=bytes, partitions=2)


@pytest.fixture
async def changelog(table: ChangelogTable, kafka_bootstrap: str) -> AsyncIterator[str]:
    name = table.changelog_topic.get_topic_name()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        await topic_led(admin, name, partitions=2)
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


async def topic_led(admin: AIOKafkaAdminClient, name: str, partitions: int) -> None:
    """Until the broker describes ``name`` with a leader for each of its ``partitions``: a
    restore started before then may find no metadata for a topic created a moment ago."""
    for _ in range(100):
        (described,) = await admin.describe_topics([name])
        led = [p for p in described.get("partitions") or () if p.get("leader", -1) >= 0]
        if not described.get("error_code") and len(led) == partitions:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} was never described with {partitions} led partitions")


def restore_of(bootstrap: str, table: ChangelogTable) -> TableRestore:
    return TableRestore(Settings(kafka_bootstrap_servers=bootstrap), [table])


async def produce(bootstrap: str, topic: str, *records: tuple[int, bytes, bytes | None]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def read_back(table: ChangelogTable, partition: int) -> tuple[dict[bytes, bytes], int | None]:
    """The partition file's keys (offset key aside) and Faust's persisted offset."""
    store = table.data
    db = store.rocksdb_options.open(store.partition_path(partition))
    try:
        items = {k: v for k, v in db.items() if k != store.offset_key}
        stored = db.get(store.offset_key)
        return items, None if stored is None else int(stored)
    finally:
        db.close()


async def test_a_cold_restore_writes_the_last_value_of_each_key_and_faust_s_offset(
    table: ChangelogTable, changelog: str, kafka_bootstrap: str
) -> None:
    await produce(
        kafka_bootstrap, changelog,
        (0, b"a", b"1"), (0, b"b", b"2"), (0, b"a", b"3"), (1, b"c", b"4"), (1, b"c", None),
    )  # fmt: skip
    copied = await restore_of(kafka_bootstrap, table).run()
    assert copied == 5
    assert read_back(table, 0) == ({b"a": b"3", b"b": b"2"}, 2)
    assert read_back(table, 1) == ({}, 1)  # the tombstone deleted c
    # Faust's recovery resumes after the offset its own store reports.
    assert table.data.persisted_offset(TP(changelog, 0)) == 2
    table.data._dbs.pop(0).close()  # persisted_offset opened it


async def test_a_second_restore_copies_only_what_was_written_since(
    table: ChangelogTable, changelog: str, kafka_bootstrap: str
) -> None:
    await produce(kafka_bootstrap, changelog, (0, b"a", b"1"), (1, b"b", b"2"))
    assert await restore_of(kafka_bootstrap, table).run() == 2
    await produce(kafka_bootstrap, changelog, (1, b"b", b"5"))
    assert await restore_of(kafka_bootstrap, table).run() == 1
    assert read_back(table, 0) == ({b"a": b"1"}, 0)
    assert read_back(table, 1) == ({b"b": b"5"}, 1)
    assert await restore_of(kafka_bootstrap, table).run() == 0


async def test_an_empty_changelog_leaves_files_with_nothing_to_replay(
    table: ChangelogTable, changelog: str, kafka_bootstrap: str
) -> None:
    assert await restore_of(kafka_bootstrap, table).run() == 0
    assert read_back(table, 0) == ({}, -1)  # Faust resumes at offset 0


async def test_tables_in_memory_are_left_to_faust(tmp_path: Path, kafka_bootstrap: str) -> None:
    app = faust.App(
        f"restore-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}",
        store="memory://", datadir=str(tmp_path), autodiscover=False,
    )  # fmt: skip
    table = changelog_table(app, "things", key_type=bytes, value_type=bytes, partitions=2)
    assert await restore_of(kafka_bootstrap, table).run() == 0
    assert not await asyncio.to_thread(lambda: any(tmp_path.rglob("*.db")))


async def test_a_first_start_creates_no_changelog_topic(
    table: ChangelogTable, kafka_bootstrap: str
) -> None:
    """Faust creates the changelog with the table's partitions; a restore that asked the
    broker about the missing topic would have it auto-created with the broker's default."""
    assert await restore_of(kafka_bootstrap, table).run() == 0
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        for _ in range(30):  # a broker creates an asked-for topic in milliseconds
            assert table.changelog_topic.get_topic_name() not in await admin.list_topics()
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def test_a_partition_whose_records_are_all_gone_ends_the_copy(
    table: ChangelogTable, changelog: str, kafka_bootstrap: str
) -> None:
    """No record left before the end offset (deleted here; compaction or control records
    do the same): the copy ends on the consumer's position instead of waiting for one."""
    await produce(kafka_bootstrap, changelog, (0, b"a", b"1"), (0, b"b", b"2"), (1, b"c", b"3"))
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(changelog, 0): RecordsToDelete(2)})
    finally:
        await admin.close()
    copied = await asyncio.wait_for(restore_of(kafka_bootstrap, table).run(), 30)
    assert copied == 1
    assert read_back(table, 0) == ({}, 1)  # up to date: Faust resumes at offset 1, its end
    assert read_back(table, 1) == ({b"c": b"3"}, 0)


async def test_files_created_for_partitions_not_held_are_removed(
    table: ChangelogTable, changelog: str, kafka_bootstrap: str
) -> None:
    """A restored file of a partition the worker was not given would go stale (and could
    bring back keys whose tombstones compaction dropped): removed once the assignment is
    known. A file that was there before the restore is Faust's and stays."""
    await produce(kafka_bootstrap, changelog, (0, b"a", b"1"), (1, b"b", b"2"))
    store = table.data
    store.rocksdb_options.open(store.partition_path(1)).close()  # Faust's, from before
    restore = restore_of(kafka_bootstrap, table)
    assert await restore.run() == 2
    assert discard_unassigned(restore, held={0}) == 0  # held: kept
    assert store.partition_path(0).exists()
    assert discard_unassigned(restore, held=set()) == 1  # not held: gone
    assert not store.partition_path(0).exists()
    assert store.partition_path(1).exists()


def write_file(table: ChangelogTable, partition: int, offset: int, **items: bytes) -> None:
    """A partition file as Faust leaves it: ``items`` and its last applied offset."""
    store = table.data
    path = store.partition_path(partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = store.rocksdb_options.open(path)
    try:
        for key, value in items.items():
            db.put(key.encode(), value)
        db.put(store.offset_key, str(offset).encode())
    finally:
        db.close()


@pytest.mark.parametrize(
    ("stored", "end", "ahead"), [(4, 5, False), (5, 5, True), (100, 1, True), (-1, 0, False)]
)
def test_a_file_is_ahead_when_it_claims_an_offset_the_changelog_lacks(
    stored: int, end: int, ahead: bool
) -> None:
    assert ahead_of_changelog(stored, end) is ahead


async def test_a_file_ahead_of_its_changelog_is_discarded_and_restored(
    table: ChangelogTable, changelog: str, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Tables from another cluster, or from before the topic was recreated: Faust stopped
    at every start ("persisted offset is higher than the last offset in that topic")."""
    write_file(table, 0, 100, stale=b"from-before")
    await produce(kafka_bootstrap, changelog, (0, b"a", b"1"))
    with caplog.at_level(logging.WARNING, logger="streams.restore"):
        assert await restore_of(kafka_bootstrap, table).run() == 1
    assert read_back(table, 0) == ({b"a": b"1"}, 0)
    said = [r.getMessage() for r in caplog.records if "discarded" in r.getMessage()]
    assert len(said) == 1 and "offset 100" in said[0] and f"{changelog}" in said[0]


async def test_files_of_a_table_whose_changelog_is_gone_are_discarded(
    table: ChangelogTable, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_file(table, 1, 7, stale=b"from-another-cluster")
    with caplog.at_level(logging.WARNING, logger="streams.restore"):
        assert await restore_of(kafka_bootstrap, table).run() == 0
    assert read_back(table, 1) == ({}, -1)  # Faust starts the partition from offset 0
    assert sum("discarded" in r.getMessage() for r in caplog.records) == 1
