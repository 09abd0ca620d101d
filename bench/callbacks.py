"""Scenario ``callbacks``: signed status callbacks end to end, at stepped rates.

For each step the harness first creates the step's messages by writing their records to
``sms.created`` (as the send agent does) and waits until the worker and the sink have taken
them in; then the generator posts ``sent`` and ``delivered`` for every message at the step's
rate (callbacks/s, two per message), and for a sample of messages polls ``GET /v1/sms/{id}``
from the ``delivered`` callback's 204 until the record shows ``delivered`` (the GET
visibility lag). Consumer lag of the worker (``sms.callbacks``) and of the sink (``sms.status``)
is sampled every second. The highest passing step is then run again for the sustain period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from bench.driver import LoadGen
from bench.kafka import LagProbe, make_records, producer, send_all
from bench.plan import Run
from bench.stack import (
    ACCOUNT_SID,
    API_KEY,
    AUTH_TOKEN,
    SERVICE_SID,
    WEBHOOK_PATH,
    BenchStack,
)

log = logging.getLogger(__name__)

VISIBILITY_P99_TARGET_MS = 1000.0
#: Lag is "bounded" when, over the second half of the window, the worker's and the sink's
#: uncommitted records together never exceed this many seconds of the offered rate, and the
#: backlog is gone within DRAIN_LIMIT_S once the load stops.
LAG_BOUND_S = 2.0
DRAIN_LIMIT_S = 10.0


def lag_bounded(step: dict[str, Any]) -> bool:
    samples = step.get("during") or []
    half = samples[len(samples) // 2 :]
    peak = max((s["worker"] + s["sink"] for s in half), default=0)
    drained = step.get("drain_s")
    return peak <= LAG_BOUND_S * step["offered_rate"] and (
        drained is not None and drained <= DRAIN_LIMIT_S
    )


def holds(step: dict[str, Any]) -> bool:
    """Webhook errors ≤ 1 %, achieved ≥ 95 %, GET lag p99 ≤ 1 s for every sample, lag bounded."""
    vis = step["visibility"]
    return bool(
        step["errors"] <= 0.01 * step["offered"]
        and step["achieved_rate"] >= 0.95 * step["offered_rate"]
        and vis["p99_ms"] is not None
        and vis["p99_ms"] <= VISIBILITY_P99_TARGET_MS
        and vis["not_visible"] == 0
        and step["lag_bounded"]
    )


async def create_messages(
    stack: BenchStack, probe: LagProbe, use_case_id: str, count: int, first: int = 0
) -> tuple[list[list[str]], float | None]:
    """Write ``count`` records to ``sms.created`` (destinations from the ``first``-th on);
    wait until worker and sink have them. ``[message_sid, record id, to]`` per message."""
    records = make_records(count, uuid.UUID(use_case_id), first)
    started = time.monotonic()
    async with producer(stack.bootstrap) as prod:
        await send_all(
            prod,
            stack.topic("sms.created"),
            ((r.message_sid.encode(), r.model_dump_json().encode()) for r in records),
        )
    groups = {
        stack.worker_group: [stack.topic("sms.created")],
        stack.sink_group: [stack.topic("sms.status")],
    }
    drained = await probe.wait_drained(groups, timeout_s=300, settle_s=1.0)
    took = None if drained is None else round(time.monotonic() - started, 2)
    return [[r.message_sid, str(r.id), r.to_number] for r in records], took


async def callback_step(
    run: Run,
    stack: BenchStack,
    gen: LoadGen,
    probe: LagProbe,
    use_case_id: str,
    rate: int,
    seconds: float,
) -> dict[str, Any]:
    count = max(1, int(rate * seconds) // 2)
    messages, created_in = await create_messages(
        stack, probe, use_case_id, count, run.take_numbers(count)
    )
    path = run.root / f"callbacks-{rate}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(messages))
    callbacks_topic, status_topic = stack.topic("sms.callbacks"), stack.topic("sms.status")

    async def sample_lag() -> list[dict[str, float]]:
        samples: list[dict[str, float]] = []
        t0 = time.monotonic()
        try:
            while True:
                samples.append(
                    {
                        "t": round(time.monotonic() - t0, 1),
                        "worker": await probe.lag(stack.worker_group, [callbacks_topic]),
                        "sink": await probe.lag(stack.sink_group, [status_topic]),
                    }
                )
                await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            return samples

    pids = run.pids(stack.pids())
    command = {
        "op": "callbacks", "url": f"{stack.base_url}{WEBHOOK_PATH}",
        "signed_url": f"{stack.base_url}{WEBHOOK_PATH}", "auth_token": AUTH_TOKEN,
        "account_sid": ACCOUNT_SID, "service_sid": SERVICE_SID, "messages_file": str(path),
        "rate": rate, "duration_s": seconds, "sample": run.plan.visibility_sample,
        "get_url": f"{stack.base_url}/v1/sms", "api_key": API_KEY, "poll_interval_s": 0.02,
        "visibility_timeout_s": 30.0, "connections": run.plan.connections, "timeout_s": 15.0,
        "max_outstanding": 20_000,
    }  # fmt: skip
    step = await gen.run(
        command, pids, during=sample_lag, profile=run.profiled(pids), profile_dir=run.profile_dir
    )
    path.unlink(missing_ok=True)
    step["messages"] = count
    step["created_in_s"] = created_in
    step["drain_s"] = await probe.wait_drained(
        {stack.worker_group: [callbacks_topic], stack.sink_group: [status_topic]}, timeout_s=90
    )
    samples = step.get("during") or []
    step["lag_max"] = {
        "worker": max((s["worker"] for s in samples), default=0),
        "sink": max((s["sink"] for s in samples), default=0),
    }
    step["lag_bounded"] = lag_bounded(step)
    step["holds"] = holds(step)
    if len(samples) > 40:  # keep the results file readable
        step["during"] = samples[:: len(samples) // 20 + 1]
    log.warning(
        "  %5d callbacks/s offered: %7.1f/s ok, webhook p99 %s ms, GET lag p50 %s / p99 %s ms,"
        " lag max %s, drain %s s, load %s -> %s",
        rate, step["achieved_rate"], step["latency"]["p99_ms"], step["visibility"]["p50_ms"],
        step["visibility"]["p99_ms"], step["lag_max"], step["drain_s"],
        step["load_average_at_start"][0], "holds" if step["holds"] else "fails",
    )  # fmt: skip
    return step


async def run_callbacks(
    run: Run, stack: BenchStack, gen: LoadGen, use_case_id: str
) -> dict[str, Any]:
    plan = run.plan
    await stack.configure_sim(default_scenario="none", callback_delay_ms=0)
    steps: list[dict[str, Any]] = []
    failed = 0
    async with LagProbe(stack.bootstrap) as probe:
        for i, rate in enumerate(plan.callback_rates):
            step = await callback_step(
                run, stack, gen, probe, use_case_id, rate, plan.callback_step_s
            )
            steps.append(step)
            failed = 0 if step["holds"] else failed + 1
            if failed == 2:
                reason = f"steps up to {rate}/s failed the criterion twice in a row"
                rest = plan.callback_rates[i + 1 :]
                steps += [{"offered_rate": r, "skipped": reason} for r in rest]
                break
        passing = sorted((s["offered_rate"] for s in steps if s.get("holds")), reverse=True)
        sustained: list[dict[str, Any]] = []
        for rate in passing[:2]:  # the best passing rate; one step lower if it does not hold
            log.warning("callbacks: sustaining %d/s for %.0f s", rate, plan.callback_sustain_s)
            step = await callback_step(
                run, stack, gen, probe, use_case_id, int(rate), plan.callback_sustain_s
            )
            sustained.append(step)
            if step["holds"]:
                break
    best = next((s for s in sustained if s["holds"]), None)
    at_1000 = next((s for s in steps if s.get("offered_rate") == 1000 and "skipped" not in s), None)
    return {
        "what": "signed sent+delivered callbacks per message, GET /v1/sms/{id} lag of a sample",
        "step_s": plan.callback_step_s,
        "sustain_s": plan.callback_sustain_s,
        "criterion": "holds = webhook errors <= 1%, achieved >= 95%, GET lag p99 <= 1 s with "
        f"every sample seen, lag bounded (second-half backlog <= {LAG_BOUND_S:.0f} s of the "
        f"offered rate and drained within {DRAIN_LIMIT_S:.0f} s)",
        "steps": steps,
        "sustained": sustained,
        "max_sustained_rate": None if best is None else best["offered_rate"],
        "at_1000": None
        if at_1000 is None
        else {
            "webhook_p99_ms": at_1000["latency"]["p99_ms"],
            "visibility_p99_ms": at_1000["visibility"]["p99_ms"],
        },
    }
