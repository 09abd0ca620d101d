"""Tables restored from their changelogs in bulk, before Faust's own recovery starts.

Faust replays a changelog one record at a time through its stream machinery (~200 µs per
record on 2 cores): a worker that lost its disk took ~11 minutes at a million live messages.
This copies each changelog partition straight into its RocksDB file instead, with one plain
consumer and one write batch per fetched batch, and stores the offset it reached the way
Faust does (``Store.offset_key``). Faust then finds every partition's file up to date and
replays only what was written after this copy: a cold start becomes a warm one.

It runs before the worker joins its consumer group, so it does not know which partitions
it will be given: it brings every partition's file up to date. Data and offset go in one
write batch, so a copy cut short (a crash, a broker error) leaves each file consistent, and
Faust's recovery goes on from wherever it stopped. Values are copied byte for byte, as
``Store.apply_changelog_batch`` would write them; a tombstone deletes its key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import rocksdict
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.stores.rocksdb import Store as RocksStore

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 5.0
#: Records fetched per ``getmany``; each partition's share is one write batch.
FETCH_RECORDS = 20_000


@dataclass
class PartitionCopy:
    """One changelog partition and the RocksDB file it fills."""

    tp: TopicPartition
    db: rocksdict.Rdict
    #: The first offset to read: one past what the file already holds.
    start: int
    #: The partition's end offset when the copy began.
    end: int

    @property
    def behind(self) -> int:
        return max(0, self.end - self.start)

    def apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Write ``records`` and the offset reached, atomically."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for record in records:
            if record.key is None:  # not a table write (Faust never sends one)
                continue
            if record.value is None:
                batch.delete(record.key)
            else:
                batch.put(record.key, record.value)
        self.start = records[-1].offset + 1
        batch.put(RocksStore.offset_key, str(self.start - 1).encode())  # the last applied
        self.db.write(batch)

    def finish(self) -> None:
        """Everything before ``end`` is read: say so, even if compaction left no record at
        the end (Faust would otherwise wait for offsets that no longer exist)."""
        last = max(self.start, self.end) - 1
        self.db.put(RocksStore.offset_key, str(last).encode())


class TableRestore:
    """Bring the RocksDB file of every changelog partition of ``tables`` up to date."""

    def __init__(self, bootstrap_servers: str, tables: Iterable[Any]) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.stores = {t.changelog_topic.get_topic_name(): t.data for t in tables
                       if isinstance(t.data, RocksStore)}  # fmt: skip
        self.copies: dict[TopicPartition, PartitionCopy] = {}

    async def run(self) -> int:
        """Copy what the files miss; the number of records copied. A broker error stops the
        copy (logged): Faust's recovery then replays the rest, as it would have anyway."""
        if not self.stores:
            return 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 2**20,
            fetch_max_bytes=64 * 2**20,
        )  # fmt: skip
        try:
            await consumer.start()
            await self._plan(consumer)
            return await self._copy(consumer)
        except KafkaError as exc:
            log.warning(
                "bulk table restore stopped (%s); Faust's recovery replays the rest",
                type(exc).__name__,
            )
            return 0
        except Exception:
            # Only a shortcut: whatever stopped it (a RocksDB error, say), the files are
            # consistent with their offsets and Faust's own recovery is still correct.
            log.exception("bulk table restore failed; Faust's recovery replays the rest")
            return 0
        finally:
            for copy in self.copies.values():
                copy.db.close()
            await consumer.stop()

    async def _plan(self, consumer: AIOKafkaConsumer) -> None:
        """Open each partition's file and find where its copy starts and ends."""
        tps = await self._partitions()
        if not tps:
            return
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            store = self.stores[tp.topic]
            path = store.partition_path(tp.partition)
            path.parent.mkdir(parents=True, exist_ok=True)
            db = store.rocksdb_options.open(path)
            stored = db.get(RocksStore.offset_key)
            start = 0 if stored is None else int(stored) + 1
            self.copies[tp] = PartitionCopy(tp, db, start, ends[tp])
        behind = [c for c in self.copies.values() if c.behind > 0]
        for copy in self.copies.values():
            if copy.behind == 0:
                copy.finish()
        consumer.assign([c.tp for c in behind])
        for copy in behind:
            consumer.seek(copy.tp, copy.start)

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the changelog topics that exist (none on a first start)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            # Only topics that exist: describing a missing one may create it (a broker with
            # auto.create.topics.enable), with the broker's partition count, not the table's.
            existing = set(await admin.list_topics()) & set(self.stores)
            described = await admin.describe_topics(sorted(existing)) if existing else []
        finally:
            await admin.close()
        return [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            if topic["error_code"] == 0
            for partition in topic["partitions"]
        ]

    async def _copy(self, consumer: AIOKafkaConsumer) -> int:
        """Read every assigned partition to its end offset, one write batch per fetch."""
        pending = {c.tp: c for c in self.copies.values() if c.behind > 0}
        total = sum(c.behind for c in pending.values())
        if not pending:
            return 0
        log.info(
            "restoring tables: %d changelog records in %d partition(s) to copy before recovery",
            total, len(pending),
        )  # fmt: skip
        copied, started = 0, time.monotonic()
        reported = started
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=FETCH_RECORDS)
            for tp, records in fetched.items():
                if records and tp in pending:
                    pending[tp].apply(records)
                    copied += len(records)
            for tp in [tp for tp, c in pending.items() if c.start >= c.end]:
                pending.pop(tp).finish()
                consumer.pause(tp)
            if time.monotonic() - reported >= PROGRESS_EVERY_S:
                reported = time.monotonic()
                log.info("restoring tables: %d of %d records copied", copied, total)
        log.info(
            "tables restored: %d changelog records copied in %.1f s",
            copied, time.monotonic() - started,
        )  # fmt: skip
        return copied


async def restore_tables(app: faust.App, bootstrap_servers: str) -> int:
    """Restore every RocksDB table of ``app`` (see :class:`TableRestore`)."""
    return await TableRestore(bootstrap_servers, app.tables.values()).run()
