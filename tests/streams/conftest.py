"""Fixtures of the stream tests: the in-process Twilio simulator of the simulator's tests."""

from tests.twilio_sim.conftest import sim

__all__ = ["sim"]
