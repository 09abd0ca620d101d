"""Callbacks end to end at the most a closed-loop native generator gets through: ``wrk``.

    python -m bench.callbacks_wrk [--bootstrap HOST:PORT] [--duration 60] [--rate 1500,2000]

Starts a stack (``bench.stack.BenchStack``), creates ``--messages`` messages the way
``bench/callbacks.py`` does (their records written to ``sms.created``, then waits until the
worker and the sink have taken them in), and signs each message's ``sent`` and ``delivered``
status callbacks as Twilio does (the bench account's auth token, the ingress's URL). They go to
one file per ``wrk`` thread, a message's two callbacks in the same file, ``sent`` first;
``bench/callbacks_wrk.lua`` sends every line once, in order. ``wrk`` runs for ``--duration``
seconds with ``--connections`` connections. ``wrk`` is closed loop: the figure is the rate it
achieved. ``--rate R`` caps it near R callbacks/s (each connection pauses
``connections / R`` s before each request: wrk's ``delay()``; 0, the default, is no cap);
``--rate 1000,2000`` runs one step per rate, each on messages of its own.

Meanwhile a sampler (this process) takes messages kept out of the files, ``--sample-rate`` a
second: it posts a message's ``sent`` and ``delivered`` (signed alike) among the load, and from
the ``delivered`` 204 polls ``GET /v1/sms/{id}`` until the record shows ``delivered``: the
visibility lag (p50/p99). The worker's and the sink's consumer lag is sampled every second;
after ``wrk`` stops, the time until both have committed everything is the drain.
CPU per process over the window comes from ``/proc`` (``bench.procstat``), this process's
included; ``wrk``'s from its resource usage once it has ended. The result is one JSON file
per run (``--out``) and a summary line per step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from bench import stack as bench_stack
from bench.callbacks import VISIBILITY_P99_TARGET_MS, create_messages
from bench.kafka import LagProbe
from bench.loadgen import callback_form
from bench.procstat import CpuWindow, load_average, machine_info
from bench.stack import BenchStack, Broker, add_stack_arguments, run_on_stack
from bench.stats import latency_summary

log = logging.getLogger("bench.callbacks_wrk")

LUA = Path(__file__).with_name("callbacks_wrk.lua")
#: The checkout measured: the stack's processes run its code.
TREE = str(Path(__file__).resolve().parent.parent)
STATUSES = ("sent", "delivered")
#: Messages of a thread's file go in blocks: every ``sent`` of the block, then every
#: ``delivered``, so a message's two callbacks are never in flight at once.
BLOCK = 1000
POLL_INTERVAL_S = 0.02
#: Polls of a sample not yet visible after 1.5 s (the target is already missed by then).
LATE_POLL_INTERVAL_S = 0.5


class Signer:
    """Twilio's form and ``X-Twilio-Signature`` for a status callback to ``url``."""

    def __init__(self, url: str) -> None:
        self.url, self.validator = url, RequestValidator(bench_stack.AUTH_TOKEN)

    def sign(self, sid: str, to: str, status: str) -> tuple[str, str]:
        """(signature, urlencoded body) of ``status`` for the message ``sid`` to ``to``."""
        form = callback_form(bench_stack.ACCOUNT_SID, bench_stack.SERVICE_SID, sid, to, status)
        return self.validator.compute_signature(self.url, form), urlencode(form)


def write_files(signer: Signer, messages: list[list[str]], prefix: Path, threads: int) -> int:
    """The threads' files ``prefix.0`` … (lines ``signature<TAB>body``); the lines written."""
    lines = 0
    for thread in range(threads):
        mine = messages[thread::threads]
        with open(f"{prefix}.{thread}", "w") as out:
            for start in range(0, len(mine), BLOCK):
                for status in STATUSES:
                    for sid, _, to in mine[start : start + BLOCK]:
                        signature, body = signer.sign(sid, to, status)
                        out.write(f"{signature}\t{body}\n")
                        lines += 1
    return lines


class Sampler:
    """Posts a reserved message's callbacks among the load and times its GET visibility."""

    def __init__(self, base_url: str, signer: Signer, reserved: list[list[str]]) -> None:
        self.base_url, self.signer, self.reserved = base_url, signer, reserved
        self.lags: list[float] = []
        self.unseen: list[str] = []
        self.failed: list[int] = []
        self.gets = 0

    async def run(self, client: aiohttp.ClientSession, rate: float, seconds: float) -> None:
        tasks: list[asyncio.Task[None]] = []
        t0 = time.monotonic()
        for n, message in enumerate(self.reserved):
            at = t0 + n / rate
            if at - t0 >= seconds:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tasks.append(asyncio.create_task(self.one(client, *message)))
        await asyncio.gather(*tasks)

    async def one(self, client: aiohttp.ClientSession, sid: str, record_id: str, to: str) -> None:
        for status in STATUSES:
            signature, body = self.signer.sign(sid, to, status)
            headers = {
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            }
            async with client.post(bench_stack.WEBHOOK_PATH, data=body, headers=headers) as answer:
                if answer.status != 204:
                    self.failed.append(answer.status)
                    return
        since = time.monotonic()
        while (waited := time.monotonic() - since) < 30.0:
            self.gets += 1
            async with client.get(f"/v1/sms/{record_id}") as answer:
                if answer.status == 200 and (await answer.json())["status"] == "delivered":
                    self.lags.append(time.monotonic() - since)
                    return
            # Fine-grained around the 1 s target; coarse after, not to load the ingress: at
            # 0.1 s a 10 s backlog made ~800 GETs/s, more than the callbacks themselves.
            await asyncio.sleep(POLL_INTERVAL_S if waited < 1.5 else LATE_POLL_INTERVAL_S)
        self.unseen.append(record_id)

    def summary(self) -> dict[str, Any]:
        return {
            **latency_summary(self.lags),
            "sampled": len(self.lags) + len(self.unseen),
            "not_visible": len(self.unseen),
            "webhook_failures": self.failed,
            "gets": self.gets,
            "poll_interval_ms": POLL_INTERVAL_S * 1000,
        }


def children_cpu() -> float:
    """CPU seconds of this process's ended (and waited for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(
    url: str, prefix: Path, args: argparse.Namespace, pause_ms: int
) -> dict[str, Any]:
    """Run ``wrk``; its result line, with the CPU it used."""
    wrk = shutil.which("wrk")
    assert wrk is not None, "wrk is not on PATH (apt-get install wrk)"
    cpu0 = children_cpu()
    proc = await asyncio.create_subprocess_exec(
        wrk, "-t", str(args.threads), "-c", str(args.connections), "-d",
        f"{args.duration:.0f}s", "--timeout", "10s", "-s", str(LUA), url, "--", str(prefix),
        str(pause_ms), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await proc.communicate()
    text = output.decode()
    found = re.search(r"^wrk-result (.*)$", text, re.MULTILINE)
    assert proc.returncode == 0 and found, f"wrk failed:\n{text}"
    result: dict[str, Any] = json.loads(found.group(1))
    result["cpu_s"] = round(children_cpu() - cpu0, 2)
    result["pause_ms"] = pause_ms
    return result


def profile(args: argparse.Namespace, pid: int | None, rate: int) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the worker for most of the window, with ``--profile PREFIX``
    (raw format, to ``PREFIX-worker-RATE.txt``); profiled figures are disturbed."""
    if args.profile is None or pid is None:
        return None
    spy = shutil.which("py-spy")
    assert spy is not None, "py-spy is not on PATH"
    out = f"{args.profile}-worker-{rate}.txt"
    seconds = max(1, int(args.duration) - 5)
    command = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw"]
    return subprocess.Popen([*command, "-o", out, "--nonblocking"], stdout=subprocess.DEVNULL)


async def lag_series(probe: LagProbe, stack: BenchStack, into: list[dict[str, float]]) -> None:
    callbacks, status = stack.topic("sms.callbacks"), stack.topic("sms.status")
    t0 = time.monotonic()
    while True:
        worker = await probe.lag(stack.worker_group, [callbacks])
        sink = await probe.lag(stack.sink_group, [status])
        into.append({"t": round(time.monotonic() - t0, 1), "worker": worker, "sink": sink})
        await asyncio.sleep(1.0)


async def step(
    stack: BenchStack, broker: Broker, probe: LagProbe, args: argparse.Namespace, rate: int
) -> dict[str, Any]:
    """One ``wrk`` run capped near ``rate`` (0: no cap) on messages of its own, with the
    sampler."""
    use_case = await stack.create_use_case()
    reserved = int(args.sample_rate * args.duration) + 1
    # Enough lines for 15 % more than the cap: a file that wraps fails the step.
    wanted = args.messages or int(rate * args.duration * 1.15 / 2) or 60_000
    count = wanted + reserved
    messages, created_in = await create_messages(
        stack, probe, use_case["id"], count, first=uuid.uuid4().int % 8_000_000
    )
    signer = Signer(f"{stack.base_url}{bench_stack.WEBHOOK_PATH}")
    prefix = Path(tempfile.mkdtemp(prefix="callbacks-wrk-")) / "requests"
    try:
        lines = write_files(signer, messages[reserved:], prefix, args.threads)
        sampler = Sampler(stack.base_url, signer, messages[:reserved])
        pids = {**stack.pids(), "harness": os.getpid()}
        if broker.pid:
            pids["broker"] = broker.pid
        lags: list[dict[str, float]] = []
        load = load_average()
        window = CpuWindow(pids).start()
        lagging = asyncio.create_task(lag_series(probe, stack, lags))
        async with aiohttp.ClientSession(
            base_url=stack.base_url, headers={"Authorization": f"Bearer {bench_stack.API_KEY}"},
            timeout=aiohttp.ClientTimeout(total=30.0),
        ) as client:  # fmt: skip
            url = f"{stack.base_url}{bench_stack.WEBHOOK_PATH}"
            pause_ms = round(args.connections * 1000 / rate) if rate else 0
            wrk_run = asyncio.create_task(run_wrk(url, prefix, args, pause_ms))
            profiling = profile(args, stack.pids().get("worker"), rate)
            await sampler.run(client, args.sample_rate, args.duration)
            wrk_result = await wrk_run
            if profiling is not None:
                await asyncio.to_thread(profiling.wait)
        cpu = window.stop()
        lagging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lagging
        groups = {
            stack.worker_group: [stack.topic("sms.callbacks")],
            stack.sink_group: [stack.topic("sms.status")],
        }
        drain_s = await probe.wait_drained(groups, timeout_s=120)
    finally:
        shutil.rmtree(prefix.parent, ignore_errors=True)
    seconds = wrk_result["duration_us"] / 1e6
    errors = sum(wrk_result["errors"].values())
    accepted = wrk_result["requests"] - wrk_result["errors"]["status"]
    visibility = sampler.summary()
    p99 = visibility["p99_ms"]
    return {
        "rate_cap": rate,
        "connections": args.connections,
        "threads": args.threads,
        "duration_s": round(seconds, 2),
        "messages": len(messages) - reserved,
        "lines": lines,
        "created_in_s": created_in,
        "load_average_at_start": load,
        "wrk": wrk_result,
        "accepted": accepted,
        "accepted_rate": round(accepted / seconds, 1),
        "errors": errors,
        "visibility": visibility,
        "lag": lags,
        "lag_max": {k: max((s[k] for s in lags), default=0) for k in ("worker", "sink")},
        "drain_s": drain_s,
        "cpu": cpu,
        "holds": bool(
            p99 is not None
            and p99 <= VISIBILITY_P99_TARGET_MS
            and visibility["not_visible"] == 0
            and errors <= 0.01 * wrk_result["requests"]
            and wrk_result["wraps"] == 0
        ),
    }


async def measure(stack: BenchStack, broker: Broker, args: argparse.Namespace) -> dict[str, Any]:
    steps = []
    async with LagProbe(stack.bootstrap) as probe:
        for rate in args.rate:
            steps.append(await step(stack, broker, probe, args, rate))
            log.warning("%s", summary_line(steps[-1]))
    return {
        "what": "pre-signed sent+delivered callbacks through wrk (closed loop), GET visibility "
        "lag of messages the sampler called back among the load",
        "holds": "visibility p99 <= 1 s with every sample seen, errors <= 1 %, no file wrapped",
        "machine": machine_info(),
        "tree": TREE,
        "bootstrap": args.bootstrap,
        "settings": args.setting,
        "steps": steps,
    }


def summary_line(s: dict[str, Any]) -> str:
    vis, cores = s["visibility"], s["cpu"]["processes"]
    cpu = " ".join(f"{name} {p['cores']}" for name, p in cores.items())
    wrk_cores = round(s["wrk"]["cpu_s"] / s["cpu"]["wall_s"], 3)
    return (
        f"callbacks_wrk cap {s['rate_cap'] or 'none'} c={s['connections']}: "
        f"{s['accepted_rate']}/s accepted over "
        f"{s['duration_s']} s, errors {s['errors']}, wraps {s['wrk']['wraps']}; visibility p50 "
        f"{vis['p50_ms']} / p99 {vis['p99_ms']} ms ({vis['sampled']} sampled, "
        f"{vis['not_visible']} unseen); lag max {s['lag_max']}, drain {s['drain_s']} s; "
        f"cores: {cpu} wrk {wrk_cores}; load {s['load_average_at_start'][0]} -> "
        f"{'holds' if s['holds'] else 'fails'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of wrk per step")
    parser.add_argument(
        "--rate", type=lambda v: [int(r) for r in v.split(",")], default=[0],
        help="callbacks/s cap per step (0: none); a comma-separated list runs one step each",
    )  # fmt: skip
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--messages", type=int, default=0,
        help="messages per step (2 callbacks each); default: 15 %% over the cap's need, or "
        "60000 with no cap",
    )  # fmt: skip
    parser.add_argument("--sample-rate", type=float, default=5.0, help="sampled messages/s")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--profile", help="py-spy the worker during each step, to PREFIX-…")
    add_stack_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    result = run_on_stack(args, "callbacks-wrk", lambda stack, broker: measure(stack, broker, args))
    for s in result["steps"]:
        print(summary_line(s))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
