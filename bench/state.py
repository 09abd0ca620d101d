"""Scenario ``state``: worker memory and table size as live messages grow, and restarts.

A worker of its own (``rocksdb://`` tables, its own prefix) is fed directly through Kafka: the
records of each chunk to ``sms.created``, then their ``sent`` callbacks, then their
``delivered`` callbacks to ``sms.callbacks`` (each phase drained before the next, so no
callback arrives before its record). At every checkpoint: RSS, table sizes, and the time a
restarted worker takes to be ready (``worker.ready`` appears) with its RocksDB files kept
("warm") and, at the ``cold_restart_at`` sizes, with them deleted ("cold": full changelog
replay). Worker CPU per event while it consumes the injected events is the figure compared
with baseline (b).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import Iterable
from typing import Any

from bench.driver import Profiles
from bench.kafka import LagProbe, callback_value, make_records, producer, send_all
from bench.plan import Run
from bench.procstat import CpuWindow, dir_size, load_average, rss_bytes
from bench.stack import ACCOUNT_SID, SERVICE_SID, BenchStack
from schemas.records import SmsRecord

log = logging.getLogger(__name__)


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


async def _phase(
    run: Run,
    stack: BenchStack,
    probe: LagProbe,
    topic: str,
    items: Iterable[tuple[bytes, bytes]],
) -> dict[str, Any]:
    """Produce ``items`` to ``topic`` and time the worker until it has committed them all."""
    worker_pid = stack.pids()["worker"]
    pids = run.pids({"worker": worker_pid})
    prepared = list(items)
    window = CpuWindow(pids).start()
    started = time.monotonic()
    async with Profiles(run.profiled(pids), run.profile_dir) as profiles:
        async with producer(stack.bootstrap) as prod:
            await send_all(prod, stack.topic(topic), prepared)
        drained = await probe.wait_drained({stack.worker_group: [stack.topic(topic)]}, 900)
    seconds = time.monotonic() - started
    cpu = window.stop()
    worker_cpu = cpu["processes"]["worker"]["cpu_s"] or 0.0  # type: ignore[index]
    return {
        "events": len(prepared),
        "seconds": round(seconds, 2),
        "drained": drained is not None,
        "events_per_s": round(len(prepared) / seconds),
        "worker_cpu_us_per_event": round(worker_cpu / max(len(prepared), 1) * 1e6, 1),
        "cpu": cpu,
        **({"profiles": profiles.results} if profiles.results else {}),
    }


async def _restart(stack: BenchStack, *, cold: bool) -> dict[str, Any]:
    worker = stack.worker
    stopped = time.monotonic()
    worker.stop()
    stop_s = time.monotonic() - stopped
    if cold:
        shutil.rmtree(stack.worker_data, ignore_errors=True)
    stack.ready_file.unlink(missing_ok=True)
    worker.start()
    ready_s = await asyncio.to_thread(stack.wait_worker_ready, 900)
    pid = worker.pid
    return {
        "kind": "cold (tables deleted: changelog replay)" if cold else "warm (RocksDB kept)",
        "stop_s": round(stop_s, 2),
        "ready_s": round(ready_s, 2),
        "rss_mb_after_ready": _mb(rss_bytes(pid)) if pid else None,
    }


def _table_sizes(run: Run, stack: BenchStack) -> dict[str, Any]:
    sizes: dict[str, Any] = {"rocksdb_mb": {}}
    for table in ("record_by_sid", "held_by_sid", "outcome_by_request"):
        total = sum(dir_size(p) for p in stack.worker_data.rglob(f"{table}-*.db"))
        sizes["rocksdb_mb"][table] = _mb(total)
    sizes["rocksdb_mb"]["total"] = _mb(dir_size(stack.worker_data))
    data = run.broker.data_dir
    if data is not None:
        changelog = f"{stack.worker_group}-record_by_sid-changelog"
        sizes["record_by_sid_changelog_mb"] = _mb(
            sum(dir_size(p) for p in data.glob(f"{changelog}-*"))
        )
    return sizes


def _fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept) of y over x; None with fewer than two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / var
    return slope, my - slope * mx


def extrapolate(checkpoints: list[dict[str, Any]], target: int = 1_000_000) -> dict[str, Any]:
    """Linear fits over the measured checkpoints, evaluated at ``target`` live messages."""
    out: dict[str, Any] = {"target_messages": target, "basis": "least-squares line through "
                           "the measured checkpoints (x = live messages)"}  # fmt: skip
    series = {
        "rss_mb": [(c["messages"], c["rss_mb"]) for c in checkpoints if c.get("rss_mb")],
        "warm_ready_s": [(c["messages"], c["warm_restart"]["ready_s"]) for c in checkpoints],
        "cold_ready_s": [
            (c["messages"], c["cold_restart"]["ready_s"])
            for c in checkpoints
            if "cold_restart" in c
        ],
    }
    for name, points in series.items():
        fit = _fit(points)
        if fit is not None:
            slope, intercept = fit
            # No growth measured (noise): the figure stays at the largest measured value.
            at_target = max(slope * target + intercept, max(y for _, y in points))
            out[name] = {
                "per_100k": round(slope * 100_000, 2),
                "intercept": round(intercept, 2),
                f"at_{target}": round(at_target, 1),
            }
    rates = [c["phases"]["callbacks"]["events_per_s"] for c in checkpoints]
    if rates:
        rate = min(rates)
        out["minutes_to_build_by_injection"] = round(3 * target / rate / 60, 1)
    return out


def _estimate_s(checkpoints: list[dict[str, Any]], target: int, cold: bool) -> float | None:
    """Seconds to grow to ``target`` and restart, at the last checkpoint's pace."""
    if not checkpoints:
        return None
    last = checkpoints[-1]
    rate = min(p["events_per_s"] for p in last["phases"].values())
    seconds = 3 * (target - last["messages"]) / max(rate, 1) + last["warm_restart"]["ready_s"]
    colds = [c for c in checkpoints if "cold_restart" in c]
    if cold and colds:
        seconds += colds[-1]["cold_restart"]["ready_s"] * target / colds[-1]["messages"]
    return float(seconds) + 10


async def run_state(run: Run) -> dict[str, Any]:
    plan = run.plan
    stack = BenchStack(
        run.root / "state",
        run.broker.bootstrap,
        processes=("worker",),
        database_url=run.database_url,
    )
    checkpoints: list[dict[str, Any]] = []
    load = load_average()
    with stack.running(start=False):
        started = time.monotonic()
        await asyncio.to_thread(stack.start, 120.0)
        first_ready_s = round(time.monotonic() - started, 2)
        await asyncio.sleep(plan.settle_s)
        idle_rss = _mb(rss_bytes(stack.pids()["worker"]))
        use_case = uuid.uuid4()
        live = 0
        skipped: list[dict[str, Any]] = []
        async with LagProbe(stack.bootstrap) as probe:
            for target in plan.state_checkpoints:
                estimate = _estimate_s(checkpoints, target, target in plan.cold_restart_at)
                left = run.deadline - time.monotonic()
                if estimate is not None and estimate > left:
                    reason = f"estimated {estimate:.0f} s > {left:.0f} s left in the run's budget"
                    log.warning("state: skipping %d messages: %s", target, reason)
                    skipped.append({"messages": target, "reason": reason})
                    continue
                records: list[SmsRecord] = make_records(target - live, use_case, live)
                log.warning("state: %d -> %d live messages", live, target)
                created = await _phase(
                    run, stack, probe, "sms.created",
                    ((r.message_sid.encode(), r.model_dump_json().encode()) for r in records),
                )  # fmt: skip
                callbacks = await _phase(
                    run, stack, probe, "sms.callbacks",
                    ((r.message_sid.encode(), callback_value(r, s, ACCOUNT_SID, SERVICE_SID))
                     for s in ("sent", "delivered") for r in records),
                )  # fmt: skip
                live = target
                await asyncio.sleep(plan.settle_s)
                point: dict[str, Any] = {
                    "messages": live,
                    "load_average": load_average(),
                    "phases": {"created": created, "callbacks": callbacks},
                    "rss_mb": _mb(rss_bytes(stack.pids()["worker"])),
                    "tables": _table_sizes(run, stack),
                }
                point["warm_restart"] = await _restart(stack, cold=False)
                if target in plan.cold_restart_at:
                    point["cold_restart"] = await _restart(stack, cold=True)
                log.warning(
                    "  %d messages: RSS %s MB, %s events/s (%s us CPU/event), warm ready %s s%s",
                    live, point["rss_mb"], callbacks["events_per_s"],
                    callbacks["worker_cpu_us_per_event"], point["warm_restart"]["ready_s"],
                    f", cold ready {point['cold_restart']['ready_s']} s"
                    if "cold_restart" in point else "",
                )  # fmt: skip
                checkpoints.append(point)
    measured_max = max((c["messages"] for c in checkpoints), default=0)
    return {
        "what": "worker alone, rocksdb:// tables, records + sent + delivered injected via Kafka",
        "load_average_at_start": load,
        "first_start_ready_s": first_ready_s,
        "idle_rss_mb": idle_rss,
        "checkpoints": checkpoints,
        "measured_max_messages": measured_max,
        "skipped_checkpoints": skipped,
        "extrapolation": extrapolate(checkpoints) if measured_max < 1_000_000 else None,
    }
