"""Tables restored from their changelogs in bulk, before Faust's own recovery starts.

Faust replays a changelog one record at a time through its stream machinery (~200 µs per
record on 2 cores): a worker that lost its disk took ~7 minutes at a million live messages.
This copies each changelog partition straight into its RocksDB file instead, with one plain
consumer and one write batch per fetched batch, and stores the offset it reached the way
Faust does (``Store.offset_key``). Faust then finds every partition's file up to date and
replays only what was written after this copy: a cold start becomes a warm one.

It runs before the worker joins its consumer group, so it does not know which partitions
it will be given: it brings every partition's file up to date, and once the first
assignment is in force :func:`discard_unassigned` deletes the files it created for the
partitions the worker was not given. Data and offset go in one write batch, so a copy cut
short (a crash, a broker error, no progress for 30 s) leaves each file consistent, and
Faust's recovery goes on from wherever it stopped. Values are copied byte for byte, as
``Store.apply_changelog_batch`` would write them; a tombstone deletes its key.

A file that claims an offset its changelog partition does not have (the data directory
holds tables from another cluster, or from before the topics were recreated) would stop
Faust's recovery at every start ("persisted offset is higher than the last offset in that
topic"): such a file is discarded, with one log line, and the partition restored from its
changelog like a lost one. A changelog topic that does not exist (yet) has no offset at
all, so every file of its table is such a file.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import rocksdict
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faust.stores.rocksdb import Store as RocksStore

from feeds import kafka_clients
from schemas.settings import Settings

log = logging.getLogger(__name__)

#: Records fetched per ``getmany``; each partition's share is one write batch.
FETCH_RECORDS = 20_000
#: Partition files open (and copied into) at once.
GROUP_SIZE = 4
#: A copy that gets no record for this long gives up and leaves the rest to Faust.
STALL_S = 30.0


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


class RestoreStalled(Exception):
    """No record and no progress for :data:`STALL_S`: the rest is left to Faust."""


class TableRestore:
    """Bring the RocksDB file of every changelog partition of ``tables`` up to date, a few
    partitions at a time (each open file holds its write buffers until it is closed)."""

    def __init__(self, settings: Settings, tables: Iterable[Any]) -> None:
        self.settings = settings
        self.stores = {t.changelog_topic.get_topic_name(): t.data for t in tables
                       if isinstance(t.data, RocksStore)}  # fmt: skip
        #: Partitions whose file this restore created, by changelog topic.
        self.created: dict[str, set[int]] = {}
        self.copied = self.partitions_done = 0
        #: The changelog topics found on the broker.
        self.on_broker: set[str] = set()

    async def run(self) -> int:
        """Copy what the files miss; the number of records copied. Whatever stops the copy
        is logged and Faust's recovery replays the rest, as it would have anyway: every
        file is consistent with its stored offset at each write."""
        if not self.stores:
            return 0
        consumer = kafka_clients.consumer(
            self.settings, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 2**20,
            fetch_max_bytes=64 * 2**20,
        )  # fmt: skip
        started = time.monotonic()
        try:
            await consumer.start()
            tps = await self._partitions()
            on_broker = [tp for tp in tps if tp.topic in self.on_broker]
            ends = await consumer.end_offsets(on_broker) if on_broker else {}
            ends.update({tp: 0 for tp in tps if tp not in ends})  # no topic: no offset
            for first in range(0, len(tps), GROUP_SIZE):
                await self._copy_group(consumer, tps[first : first + GROUP_SIZE], ends, len(tps))
        except (KafkaError, RestoreStalled) as exc:
            log.warning(
                "bulk table restore stopped (%s); Faust's recovery replays the rest",
                type(exc).__name__,
            )
        except Exception:
            # Only a shortcut: whatever stopped it (a RocksDB error, say), Faust's own
            # recovery is still correct.
            log.exception("bulk table restore failed; Faust's recovery replays the rest")
        finally:
            await consumer.stop()
        if self.copied:
            log.info(
                "tables restored: %d changelog records copied in %.1f s",
                self.copied, time.monotonic() - started,
            )  # fmt: skip
        return self.copied

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the changelog topics that exist (none on a first start)."""
        admin = kafka_clients.admin(self.settings)
        await admin.start()
        try:
            # Only topics that exist: describing a missing one may create it (a broker with
            # auto.create.topics.enable), with the broker's partition count, not the table's.
            existing = set(await admin.list_topics()) & set(self.stores)
            self.on_broker = existing
            described = await admin.describe_topics(sorted(existing)) if existing else []
        finally:
            await admin.close()
        return [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            if topic["error_code"] == 0
            for partition in topic["partitions"]
        ] + self._orphans(existing)

    def _open(self, tp: TopicPartition, end: int) -> PartitionCopy:
        """Open the partition's file (creating it) and find where its copy starts; a file
        ahead of its changelog is discarded first."""
        store = self.stores[tp.topic]
        path = store.partition_path(tp.partition)
        stored = _stored_offset(store, path)
        if stored is not None and ahead_of_changelog(stored, end):
            log.warning(
                "table file %s holds changelog offset %d but %s ends at offset %d (tables "
                "from another cluster, or from before the topic was recreated): discarded, "
                "the partition is restored from its changelog",
                path, stored, tp, end,
            )  # fmt: skip
            shutil.rmtree(path)
            stored = None
        if not path.exists():
            self.created.setdefault(tp.topic, set()).add(tp.partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = store.rocksdb_options.open(path)
        return PartitionCopy(tp, db, 0 if stored is None else stored + 1, end)

    def _orphans(self, existing: set[str]) -> list[TopicPartition]:
        """The local files of tables whose changelog topic is not on the broker."""
        return [
            TopicPartition(topic, partition)
            for topic, store in self.stores.items()
            if topic not in existing
            for partition in local_partitions(store)
        ]

    async def _copy_group(
        self,
        consumer: AIOKafkaConsumer,
        tps: Sequence[TopicPartition],
        ends: dict[TopicPartition, int],
        total: int,
    ) -> None:
        copies: list[PartitionCopy] = []
        try:
            for tp in tps:
                copies.append(self._open(tp, ends[tp]))
            await self._copy(consumer, [c for c in copies if c.behind > 0])
            for copy in copies:
                copy.finish()
            self.partitions_done += len(copies)
            log.info(
                "restoring tables: %d of %d changelog partitions up to date, %d records copied",
                self.partitions_done, total, self.copied,
            )  # fmt: skip
        finally:
            for copy in copies:
                try:
                    copy.db.close()
                except Exception:
                    log.exception("could not close the table file of %s", copy.tp)

    async def _copy(self, consumer: AIOKafkaConsumer, copies: Sequence[PartitionCopy]) -> None:
        """Read ``copies`` to their end offsets, one write batch per partition and fetch.

        A partition is done when the consumer's position reaches its end offset, which also
        holds when no record is left there (compacted, deleted, or control records)."""
        pending = {c.tp: c for c in copies}
        consumer.assign(list(pending))
        for copy in copies:
            consumer.seek(copy.tp, copy.start)
        progress_at = time.monotonic()
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=FETCH_RECORDS)
            for tp, records in fetched.items():
                if records and tp in pending:
                    pending[tp].apply(records)
                    self.copied += len(records)
                    progress_at = time.monotonic()
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp].end:
                    del pending[tp]
            if time.monotonic() - progress_at > STALL_S:
                raise RestoreStalled(f"no progress for {STALL_S:.0f} s on {sorted(pending)}")


def ahead_of_changelog(stored: int, end: int) -> bool:
    """Whether a file whose last applied offset is ``stored`` claims records its changelog
    partition, which ends (next offset) at ``end``, does not have."""
    return stored >= end


def _stored_offset(store: RocksStore, path: Path) -> int | None:
    """The last changelog offset the file at ``path`` applied; None without a file."""
    if not path.exists():
        return None
    db = store.rocksdb_options.open(path)
    try:
        stored = db.get(RocksStore.offset_key)
    finally:
        db.close()
    return None if stored is None else int(stored)


def local_partitions(store: RocksStore) -> list[int]:
    """The partitions that have a file in the table's directory."""
    stem = store.partition_path(0).name.removesuffix("0.db")  # "<table>-"
    if not store.path.is_dir():
        return []
    found = []
    for path in store.path.iterdir():
        number = path.name.removeprefix(stem).removesuffix(".db")
        if path.name.startswith(stem) and path.name.endswith(".db") and number.isdigit():
            found.append(int(number))
    return sorted(found)


def held_partitions(app: faust.App) -> set[int]:
    """The partition numbers this worker holds, active or standby (tables are partitioned
    like their source topics, so one number covers every table)."""
    assignor = app.assignor
    return {tp.partition for tp in assignor.assigned_actives() | assignor.assigned_standbys()}


def discard_unassigned(restore: TableRestore, held: set[int]) -> int:
    """Delete the files the restore created for partitions not in ``held``; how many.

    Faust keeps a partition's file current only while it holds the partition: a file left
    behind would go stale, and if the partition came later, after compaction had dropped
    tombstones written meanwhile, deleted keys would come back. Without a file Faust replays
    such a partition from the start, as it always did. Run once the first assignment is in
    force (the worker is ready), in one go (nothing else runs on the loop meanwhile)."""
    removed = 0
    for topic, partitions in restore.created.items():
        store = restore.stores[topic]
        for partition in sorted(partitions - held):
            if partition in store._dbs:  # Faust opened it after all: it is Faust's now
                continue
            shutil.rmtree(store.partition_path(partition), ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d restored table file(s) of partitions not held here", removed)
    return removed
