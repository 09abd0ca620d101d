"""``free_port`` alone: a port nothing listens on, never one an outgoing connection may take."""

from __future__ import annotations

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


def test_a_port_in_use_is_skipped_and_an_exhausted_range_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        taken = listening.getsockname()[1]
        # A range of two ports: the one in use and the next (free unless something holds it).
        monkeypatch.setattr(processes, "_FIRST_FREE_PORT", taken)
        monkeypatch.setattr(processes, "_ephemeral_low", lambda: taken + 2)
        monkeypatch.setattr(processes, "_handed_out", set())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", taken + 1))  # the other port is free right now
        assert free_port() == taken + 1
        with pytest.raises(OSError, match="no free TCP port"):
            free_port()  # the listening one is never handed out, the other was already
