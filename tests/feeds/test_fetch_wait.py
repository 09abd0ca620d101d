"""The fetch wait rule alone (no broker): long only when nothing left out will be read."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import Fetcher

from feeds import fetch_wait
from feeds.fetch_wait import IDLE_AFTER_S, fetch_wait_ms

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


QUIET = IDLE_AFTER_S + 1


def test_a_fetch_that_leaves_nothing_out_waits_long_once_quiet() -> None:
    assert fetch_wait_ms([], (), quiet_s=QUIET, busy_ms=25, idle_ms=500) == 500


def test_a_fetch_soon_after_records_waits_short_even_naming_everything() -> None:
    """Under load a fetch may name everything (every buffer just drained): it keeps the
    short wait, as before the rule."""
    assert fetch_wait_ms([], (), quiet_s=IDLE_AFTER_S / 2, busy_ms=25, idle_ms=500) == 25


def test_a_fetch_that_leaves_out_a_partition_being_read_waits_short() -> None:
    assert fetch_wait_ms([A0], (), quiet_s=QUIET, busy_ms=25, idle_ms=500) == 25
    assert fetch_wait_ms([A0, A1], {A0}, quiet_s=QUIET, busy_ms=25, idle_ms=500) == 25


def test_partitions_the_reader_set_aside_do_not_shorten_the_wait() -> None:
    """Faust's paused partitions (its changelogs once recovered) stay buffered, undrained."""
    wait = fetch_wait_ms([A0, B0], {A0, B0, A1}, quiet_s=QUIET, busy_ms=25, idle_ms=500)
    assert wait == 500


def test_a_changed_aiokafka_fetcher_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_wait.check_aiokafka()  # the installed aiokafka is the one the fetcher was built on
    monkeypatch.delattr(Fetcher, "_get_actions_per_node")
    with pytest.raises(RuntimeError, match="aiokafka changed"):
        fetch_wait.check_aiokafka()
