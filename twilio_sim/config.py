"""Configuration of the Twilio simulator: accounts, Messaging Services, scenarios, timings."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Scenario(enum.StrEnum):
    """What happens to a message after it was accepted, as seen through its status callbacks."""

    DELIVERED = "delivered"
    """queued → sent → delivered."""
    SENT_ONLY = "sent_only"
    """queued → sent, and no delivery receipt ever."""
    UNDELIVERED = "undelivered"
    """queued → sent → undelivered (``ErrorCode`` = ``undelivered_error_code``)."""
    FAILED = "failed"
    """queued → failed (``ErrorCode`` = ``failed_error_code``)."""
    DUPLICATES = "duplicates"
    """The ``delivered`` callbacks, each sent twice."""
    OUT_OF_ORDER = "out_of_order"
    """queued → delivered → sent: the receipt overtakes the ``sent`` callback."""
    EARLY = "early"
    """The ``delivered`` callbacks, the first one completed before the create call answers."""
    NONE = "none"
    """The message is delivered but no callback is ever sent."""


class ConfigError(ValueError):
    """A configuration (or a configuration patch) that does not validate."""


_DICT_FIELDS = frozenset({"accounts", "services", "scenarios", "scenario_delays_ms"})


class SimConfig(BaseModel):
    """Everything the simulator can be told; :meth:`merged` applies a partial update."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: dict[str, str] = Field(default_factory=dict)
    """Account SID → auth token. Requests must authenticate with one of these (HTTP basic)."""
    services: dict[str, list[str]] = Field(default_factory=dict)
    """Messaging Service SID → its sender pool (E.164 numbers)."""
    scenarios: dict[str, Scenario] = Field(default_factory=dict)
    """Destination number (E.164) → scenario; numbers not listed get ``default_scenario``."""
    default_scenario: Scenario = Scenario.DELIVERED
    """Scenario of every destination not listed in ``scenarios``."""
    landline_numbers: frozenset[str] = frozenset()
    """Numbers Lookup reports with line type ``landline`` (every other valid number: mobile)."""
    voip_numbers: frozenset[str] = frozenset()
    """Numbers Lookup reports with line type ``nonFixedVoip``."""
    invalid_numbers: frozenset[str] = frozenset()
    """Numbers Lookup reports as invalid even when they parse as valid."""
    silent_numbers: frozenset[str] = frozenset()
    """Destinations whose messages move along their scenario (``callback_delay_ms`` apart,
    visible through fetch and list) while no status callback is ever sent: lost callbacks."""
    create_accept_delay_ms: float = Field(default=0.0, ge=0)
    """Pause before a Messages create is recorded, in milliseconds. A caller that disconnects
    meanwhile leaves no message, as when Twilio never got the call."""
    create_errors: dict[str, int] = Field(default_factory=dict)
    """Destination number (E.164) → HTTP status (``500``, ``503``, ...) every create call to
    it is answered with, no message created: Twilio failing for that number."""
    create_delay_ms: float = Field(default=0.0, ge=0)
    """Pause before a Messages create answers (the message exists already), in milliseconds."""
    callback_delay_ms: float = Field(default=5.0, ge=0)
    """Pause before each status callback of a message, in milliseconds (0 for benchmarks)."""
    scenario_delays_ms: dict[Scenario, float] = Field(default_factory=dict)
    """Per-scenario override of ``callback_delay_ms``."""
    callback_max_concurrency: int = Field(default=100, ge=1)
    """Most status callbacks in flight at once, over all messages."""
    callback_retries: int = Field(default=2, ge=0, le=10)
    """Further attempts after a connection error or a 5xx (an ``#rc=`` override wins)."""
    callback_retry_backoff_ms: float = Field(default=50.0, ge=0)
    """First pause between attempts, doubled after each retry."""
    callback_timeout_s: float = Field(default=5.0, gt=0)
    """Total time one callback attempt may take."""
    sign_url_fragment: bool = False
    """Sign each callback over the StatusCallback *with* its ``#fragment`` (the request never
    carries it). Twilio's documents leave open which URL it signs; off: without."""
    undelivered_error_code: int = 30003
    """``ErrorCode`` of the ``undelivered`` scenario (30003: Unreachable destination handset)."""
    failed_error_code: int = 30007
    """``ErrorCode`` of the ``failed`` scenario (30007: Message filtered)."""
    inbound_url: str | None = None
    """Where incoming messages (``POST /_sim/inbound``) are sent, signed, as Twilio sends
    them to a number's or Messaging Service's incoming-message webhook; None: nowhere."""
    advanced_opt_out: bool = True
    """Twilio's Advanced Opt-Out: an opt-out keyword texted to a Messaging Service makes its
    sends to that person fail with 21610 until they text an opt-in keyword."""
    queued_numbers: frozenset[str] = frozenset()
    """Destinations whose messages stay ``queued`` (a carrier backlog): one with a
    ``ValidityPeriod`` fails with 30001 once it has waited that long (the simulator's clock)."""
    time_scale: float = Field(default=1.0, gt=0)
    """How many times sooner than asked scheduled messages are sent and validity periods
    run out (for demos); ``POST /_sim/clock`` moves the clock forward at once (for tests)."""
    max_stored_messages: int = Field(default=200_000, ge=1)
    """Messages remembered for inspection; the oldest are forgotten beyond this."""

    @field_validator("services")
    @classmethod
    def _senders_are_e164(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for sid, pool in value.items():
            for number in pool:
                if not (number.startswith("+") and number[1:].isdigit()):
                    raise ValueError(f"service {sid}: sender {number!r} is not E.164")
        return value

    def delay_for(self, scenario: Scenario) -> float:
        """Seconds to wait before each callback of a message in ``scenario``."""
        return self.scenario_delays_ms.get(scenario, self.callback_delay_ms) / 1000.0

    def scenario_for(self, to: str) -> Scenario:
        """The scenario of a message sent to ``to``."""
        return self.scenarios.get(to, self.default_scenario)

    def merged(self, patch: Mapping[str, Any]) -> SimConfig:
        """A copy with ``patch`` applied: mappings are merged key by key (a ``null`` value
        removes that key), everything else is replaced. Raises :class:`ConfigError`."""
        unknown = set(patch) - set(type(self).model_fields)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        data = self.model_dump()
        for key, value in patch.items():
            if key in _DICT_FIELDS and isinstance(value, Mapping):
                merged = dict(data[key])
                for inner_key, inner_value in value.items():
                    if inner_value is None:
                        merged.pop(inner_key, None)
                    else:
                        merged[inner_key] = inner_value
                data[key] = merged
            else:
                data[key] = value
        return self.validated(data)

    @classmethod
    def validated(cls, data: Mapping[str, Any]) -> SimConfig:
        """Build a configuration from plain data (parsed JSON). Raises :class:`ConfigError`."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(str(exc)) from exc

    def public_view(self) -> dict[str, Any]:
        """The configuration as JSON-able data, auth tokens masked."""
        data = self.model_dump(mode="json")
        data["accounts"] = {sid: "***" for sid in self.accounts}
        return data
