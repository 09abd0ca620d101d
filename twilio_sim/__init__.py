"""A local stand-in for Twilio (Messages API, Lookup v2, signed status callbacks).

A development and test tool, not runtime code: smslane's twilio client is pointed at it
through ``SMSLANE_TWILIO_API_BASE_URL`` / ``SMSLANE_TWILIO_LOOKUP_BASE_URL``.
"""

from twilio_sim.cli import main
from twilio_sim.config import ConfigError, Scenario, SimConfig
from twilio_sim.models import CallbackRecord, SimMessage
from twilio_sim.segments import SegmentInfo, count_segments, segment_info
from twilio_sim.simulator import TwilioSimulator

__all__ = [
    "CallbackRecord",
    "ConfigError",
    "Scenario",
    "SegmentInfo",
    "SimConfig",
    "SimMessage",
    "TwilioSimulator",
    "count_segments",
    "main",
    "segment_info",
]
