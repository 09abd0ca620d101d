"""``free_port`` alone: a port nothing listens on, never one an outgoing connection may take."""

from __future__ import annotations

import random
import socket

import pytest

from smslane import processes
from smslane.processes import free_port


def test_ports_come_from_below_the_ephemeral_range_and_are_free() -> None:
    low = processes._ephemeral_low()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)  # never the same one twice
    for port in ports:
        assert processes._FIRST_FREE_PORT <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # nothing listens there


def _free_ports_in_a_row(count: int = 2) -> int:
    """The first of ``count`` neighbouring ports below the ephemeral range that nothing holds now.

    Not ``bind(0)``: its neighbour would be an ephemeral port, which any outgoing connection
    on the machine may take at any moment (CI once saw exactly that).
    """
    start, end = processes.port_range()
    for _ in range(100):
        first = random.randrange(start, end - count + 1)
        if all(processes.port_free("127.0.0.1", port) for port in range(first, first + count)):
            return first
    raise AssertionError(f"no {count} free ports in a row below the ephemeral range")


def test_a_port_in_use_is_skipped_and_an_exhausted_range_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = _free_ports_in_a_row()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", taken))
        listening.listen()
        # A range of two ports: the one in use and the next, which nothing holds.
        monkeypatch.setattr(processes, "_FIRST_FREE_PORT", taken)
        monkeypatch.setattr(processes, "_ephemeral_low", lambda: taken + 2)
        monkeypatch.setattr(processes, "_handed_out", set())
        assert free_port() == taken + 1
        with pytest.raises(OSError, match="no free TCP port"):
            free_port()  # the listening one is never handed out, the other was already


def test_a_span_is_neighbouring_free_ports_none_handed_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = _free_ports_in_a_row(3)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", taken + 1))
        listening.listen()
        # Three ports: a pair needs taken and taken + 1 (in use) or taken + 1 and taken + 2.
        monkeypatch.setattr(processes, "_FIRST_FREE_PORT", taken)
        monkeypatch.setattr(processes, "_ephemeral_low", lambda: taken + 3)
        monkeypatch.setattr(processes, "_handed_out", set())
        with pytest.raises(OSError, match="with the next 1 free too"):
            free_port(span=2)  # the listening port sits in every pair
    first = free_port(span=2)  # now nothing listens: the pair starts at taken or taken + 1
    assert first in (taken, taken + 1)
    assert {first, first + 1} <= processes._handed_out
    assert free_port() not in (first, first + 1)
