"""``StoreReads``: a table's reads in one store lookup, its writes through the table."""

from __future__ import annotations

from collections import UserDict
from typing import Any

from streams.tables import StoreReads


class CountingStore(UserDict[bytes, bytes]):
    """A store that counts its lookups (``__getitem__`` and ``__contains__``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def __getitem__(self, key: bytes) -> bytes:
        self.lookups += 1
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.lookups += 1
        return super().__contains__(key)


class FakeTable(UserDict[bytes, bytes]):
    """A Faust table as ``StoreReads`` sees it: a mapping whose writes are the table's own
    (they would reach its changelog) over a store, ``data``."""

    def __init__(self) -> None:
        super().__init__()
        self.data: Any = CountingStore()
        self.writes: list[tuple[bytes, bytes | None]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append((key, value))
        self.data.data[key] = value

    def __delitem__(self, key: bytes) -> None:
        self.writes.append((key, None))
        del self.data.data[key]


def test_a_read_is_one_store_lookup() -> None:
    table = FakeTable()
    table.data.data[b"SM1"] = b"v1"
    reads = StoreReads(table)  # type: ignore[arg-type]

    assert reads.get(b"SM1") == b"v1"
    assert reads.get(b"SM2") is None
    assert table.data.lookups == 2


def test_writes_and_deletions_go_through_the_table() -> None:
    table = FakeTable()
    reads = StoreReads(table)  # type: ignore[arg-type]

    reads[b"SM1"] = b"v1"
    assert reads.get(b"SM1") == b"v1"
    del reads[b"SM1"]

    assert table.writes == [(b"SM1", b"v1"), (b"SM1", None)]
    assert reads.get(b"SM1") is None
    assert list(reads.items()) == []
