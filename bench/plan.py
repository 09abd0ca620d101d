"""Rates, durations and sizes of each mode (full, ``--quick``, ``smoke``) and the run context."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import Broker


@dataclass(frozen=True)
class Plan:
    """What a run does; see :data:`PLANS`."""

    mode: str
    send_rates: tuple[int, ...]
    send_step_s: float
    callback_rates: tuple[int, ...]
    callback_step_s: float
    callback_sustain_s: float
    visibility_sample: int
    raw_messages: int
    sink_events: int
    state_checkpoints: tuple[int, ...]
    cold_restart_at: tuple[int, ...]
    warmup_s: float = 20.0
    #: The whole run should end within this many seconds: ``state`` skips (and says so) a
    #: checkpoint it estimates would not fit.
    budget_s: float = 18.5 * 60
    #: Pause before RSS and table sizes are read at a state checkpoint.
    settle_s: float = 2.0
    #: Connections of the generator's pool: the most requests in flight at the server.
    connections: int = 256
    #: Stop a rate ladder after two steps whose achieved rate is under this share of the offered.
    saturated_below: float = 0.7


PLANS: dict[str, Plan] = {
    "full": Plan(
        mode="full",
        send_rates=(100, 250, 500, 1000, 2000),
        send_step_s=20,
        callback_rates=(250, 500, 1000, 2000, 3000),
        callback_step_s=20,
        callback_sustain_s=60,
        visibility_sample=200,
        raw_messages=30_000,
        sink_events=60_000,
        state_checkpoints=(25_000, 50_000, 100_000),
        cold_restart_at=(25_000, 50_000, 100_000),
    ),
    "quick": Plan(
        mode="quick",
        send_rates=(100, 250, 500, 1000, 2000),
        send_step_s=5,
        callback_rates=(250, 500, 1000, 2000, 3000),
        callback_step_s=5,
        callback_sustain_s=10,
        visibility_sample=100,
        raw_messages=10_000,
        sink_events=20_000,
        state_checkpoints=(5_000, 10_000, 20_000),
        cold_restart_at=(5_000, 10_000, 20_000),
        warmup_s=8.0,
    ),
    "smoke": Plan(
        mode="smoke",
        send_rates=(20,),
        send_step_s=2,
        callback_rates=(40,),
        callback_step_s=2,
        callback_sustain_s=1,
        visibility_sample=10,
        raw_messages=500,
        sink_events=1_500,
        state_checkpoints=(300,),
        cold_restart_at=(300,),
        warmup_s=1.0,
        settle_s=0.5,
        connections=32,
    ),
}


@dataclass
class Run:
    """Everything a scenario needs: the plan, the broker, where to write, what to profile."""

    plan: Plan
    broker: Broker
    root: Path
    profile: tuple[str, ...] = ()
    database_url: str | None = None
    #: Register one ``sms.status`` endpoint pointing at a receiver in the bench process.
    webhook_receiver: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    #: ``time.monotonic()`` by which the run should be over (start + ``plan.budget_s``).
    deadline: float = float("inf")
    _numbers: int = 0

    def take_numbers(self, count: int) -> int:
        """The first of ``count`` destination numbers no earlier request of the run used."""
        first, self._numbers = self._numbers, self._numbers + count
        return first

    @property
    def profile_dir(self) -> Path:
        return self.root / "profiles"

    def profiled(self, pids: dict[str, int]) -> dict[str, int]:
        """The processes of ``pids`` that ``--profile`` names."""
        return {name: pid for name, pid in pids.items() if name in self.profile}

    def pids(self, stack_pids: dict[str, int]) -> dict[str, int]:
        """The stack's processes plus the broker's (when its pid is known)."""
        broker = self.broker.pid
        return {**({"broker": broker} if broker else {}), **stack_pids}
