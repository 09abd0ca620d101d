"""Where a send's time goes: each hop of ``POST /v1/sms/`` from the records' own timestamps.

Runs a stack of its own (on ``--bootstrap`` or a broker it starts), sends ``--count``
requests at ``--rate`` per second, open loop, then reads the topics the sends went through
and lines each request's records up:

    client fires ──► request appended (sms.send-requests, broker clock: LogAppendTime)
      ──► in-flight marker produced (outcome_by_request changelog, the worker's clock)
      ──► record produced (sms.created: after the marker's ack and both Twilio calls)
      ──► reply produced (sms.send-replies) ──► client has its 201

All processes share this machine's clock, so the differences are the hops' durations (each
produced timestamp is taken when the record is handed to the producer, not acked).

    python -m bench.trace_send --rate 100 --count 1000 [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.kafka import LagProbe
from bench.procstat import CpuWindow
from bench.stack import API_KEY, BenchStack, Broker, add_stack_arguments, run_on_stack
from bench.stats import latency_summary
from schemas.topics import Topics

log = logging.getLogger("bench.trace_send")

HOPS = (
    ("ingress", "client fires → request appended"),
    ("to_worker", "request appended → marker produced"),
    ("marker_and_twilio", "marker produced → record produced"),
    ("to_reply", "record produced → reply produced"),
    ("to_client", "reply produced → client has the 201"),
    ("total", "client fires → 201"),
)


class Sends:
    """The open-loop sender: request i fires at ``t0 + i / rate``."""

    def __init__(self, client: aiohttp.ClientSession, use_case_id: str) -> None:
        self.client, self.use_case_id = client, use_case_id
        #: Destinations are new numbers (both Twilio calls every time), unique per Sends.
        self.first = 2_000_000 + uuid.uuid4().int % 7_000_000  # NANP: no 0/1 after 415
        #: sid → (fired at, answered at), both time.time()
        self.times: dict[str, tuple[float, float]] = {}
        self.failures: Counter[int] = Counter()

    async def run(self, rate: float, count: int) -> None:
        t0 = time.time() + 0.2
        tasks = []
        for i in range(count):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.time()))
            tasks.append(asyncio.create_task(self.one(t0 + i / rate, i)))
        await asyncio.gather(*tasks)

    async def one(self, fired: float, i: int) -> None:
        body = {"use_case_id": self.use_case_id, "message": "trace",
                "to_phone_number": f"+1415{self.first + i:07d}"}  # fmt: skip
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        async with self.client.post("/v1/sms/", json=body, headers=headers) as answer:
            if answer.status != 201:
                self.failures[answer.status] += 1
                return
            record = await answer.json()
        self.times[record["message_sid"]] = (fired, time.time())


def first_timestamps(records: list[Any], key: Any) -> dict[Any, float]:
    """The first record's timestamp (seconds) for each key ``key(record)``."""
    seen: dict[Any, float] = {}
    for record in records:
        seen.setdefault(key(record), record.timestamp / 1000)
    return seen


async def wait_for_statuses(stack: BenchStack, count: int, timeout_s: float) -> None:
    """Until ``sms.status`` holds ``count`` events (or ``timeout_s`` passes)."""
    deadline = time.monotonic() + timeout_s
    async with LagProbe(stack.bootstrap) as probe:
        while time.monotonic() < deadline:
            ends = await probe.end_offsets([stack.topic(Topics.STATUS.base_name)])
            if sum(ends.values()) >= count:
                return
            await asyncio.sleep(0.1)


async def trace(
    stack: BenchStack, broker: Broker, rate: float, count: int, warmup_s: float = 5.0
) -> dict[str, Any]:
    use_case = await stack.create_use_case()
    # aiohttp, every connection kept alive, as bench/loadgen.py: httpx's pool keeps 20 (the
    # ingress then pays for accepting the others anew) and is slow with more.
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(
        base_url=stack.base_url, headers=headers, connector=aiohttp.TCPConnector(limit=256),
        timeout=aiohttp.ClientTimeout(total=30.0),
    ) as client:  # fmt: skip
        warm = Sends(client, use_case["id"])
        await warm.run(rate=rate, count=int(rate * warmup_s))
        window = CpuWindow({**stack.pids(), **({"broker": broker.pid} if broker.pid else {})})
        window.start()
        sends = Sends(client, use_case["id"])
        await sends.run(rate, count)
        if stack.scenario != "none":  # the window ends once every callback is a status
            versions = 3 * (len(warm.times) + len(sends.times))
            await wait_for_statuses(stack, versions, timeout_s=30.0)
        cpu = window.stop()
    requests = first_timestamps(await stack.read_topic("sms.send-requests"), lambda r: r.key)
    replies = {}
    for record in await stack.read_topic("sms.send-replies"):
        reply = json.loads(record.value)
        if reply.get("record"):
            replies[reply["record"]["message_sid"]] = (uuid.UUID(reply["request_id"]).bytes,
                                               record.timestamp / 1000)  # fmt: skip
    markers = first_timestamps(
        await stack.read_topic(f"{stack.worker_group.removeprefix(stack.prefix)}"
                               "-outcome_by_request-changelog"), lambda r: r.key)  # fmt: skip
    created = first_timestamps(await stack.read_topic("sms.created"), lambda r: r.key.decode())
    hops: dict[str, list[float]] = {name: [] for name, _ in HOPS}
    for sid, (fired, answered) in sends.times.items():
        request_id, replied = replies[sid]
        chain = [fired, requests[request_id], markers[request_id], created[sid], replied, answered]
        for (name, _), start, end in zip(HOPS, chain, chain[1:], strict=False):
            hops[name].append(end - start)
        hops["total"].append(answered - fired)
    return {
        "rate": rate, "count": count, "warmup_s": warmup_s, "scenario": stack.scenario,
        "ok": len(sends.times),
        "failures": dict(sends.failures),
        "hops_ms": {name: latency_summary(values) for name, values in hops.items()},
        "cpu_us_per_send": {
            name: round(1e6 * p["cpu_s"] / max(len(sends.times), 1))
            for name, p in cpu["processes"].items() if p["cpu_s"] is not None  # type: ignore[attr-defined]
        },
        "machine_busy_cores": cpu["machine_busy_cores"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--warmup-seconds", type=float, default=5.0,
        help="sends at --rate before the measured window (default 5 s). A broker started for "
        "the run spends minutes compiling (its JIT): 60 s leaves most of that outside the "
        "window, to measure steady state",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument(
        "--callbacks", dest="scenario", action="store_const", const="delivered",
        default="none",
        help="the simulator calls back sent, then delivered, for every message, and the "
        "window lasts until each is a status: CPU per send then counts a send and its two "
        "callbacks (without it, the simulator sends no callback)",
    )  # fmt: skip
    add_stack_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    result = run_on_stack(
        args, "trace-send",
        lambda stack, broker: trace(stack, broker, args.rate, args.count, args.warmup_seconds),
    )  # fmt: skip
    for name, label in HOPS:
        p = result["hops_ms"][name]
        nan = float("nan")
        figures = "  ".join(f"{q} {p[f'{q}_ms'] or nan:8.1f}" for q in ("p50", "p90", "p99"))
        print(f"{label:40s} {figures} ms")
    print(f"ok {result['ok']} of {result['count']}, failures {result['failures']}")
    print(f"CPU µs per send: {result['cpu_us_per_send']}")
    print(f"machine busy cores: {result['machine_busy_cores']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
