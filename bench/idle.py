"""An idle worker's CPU, per source tree, one tree after the other.

    python -m bench.idle --bootstrap 127.0.0.1:19092 BEFORE_TREE AFTER_TREE BEFORE_TREE ...
    python -m bench.idle --stack --sends 500 BEFORE_TREE AFTER_TREE ...   # own broker, all

Each tree runs a worker alone (``BenchStack``, ``rocksdb://`` tables, a topic prefix of its
own) on the named broker; once it is ready and has settled, the worker's CPU time (utime +
stime from ``/proc/<pid>/stat``, its threads included) over ``--seconds`` of idleness, as
cores. Nothing is sent to it. Trees run in the order given, so alternate them (``A B A B``):
on a shared machine the load drifts, and process CPU time is what compares.

``--stack`` runs the whole stack (simulator, worker, sink, ingress) and measures each;
``--sends N`` first sends N messages at 50/s, so the worker idles as it does after work (its
tables written, their changelogs buffered). Without ``--bootstrap`` each tree gets a broker of
its own (started for the run, ~20 s more), whose idle CPU is measured too: a shared broker's
is everyone's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench.procstat import CpuWindow, load_average
from bench.stack import API_KEY, BenchStack, Broker
from bench.trace_send import Sends

PROCESSES = ("twilio-sim", "worker", "sink", "ingress")


async def measure(
    root: Path,
    bootstrap: str | None,
    settle: float,
    seconds: float,
    settings: dict[str, str],
    *,
    whole_stack: bool = False,
    sends: int = 0,
) -> dict[str, Any]:
    """This checkout's worker (or ``whole_stack``), started, ``sends`` sent, settled, then
    left idle for ``seconds``."""
    out: dict[str, Any] = {
        "checkout": str(Path.cwd()), "settings": settings, "load_average_at_start": load_average(),
        "whole_stack": whole_stack, "sends": sends, "own_broker": bootstrap is None,
    }  # fmt: skip
    # Broker.start runs its own event loop (asyncio.run): in a thread, not inside this one.
    broker = await asyncio.to_thread(Broker(bootstrap, root).start)
    try:
        processes = PROCESSES if whole_stack else ("worker",)
        stack = BenchStack(root, broker.bootstrap, processes=processes, **settings)
        with stack.running(start=False):
            await asyncio.to_thread(stack.start, 120.0)
            if sends:
                out["sent_ok"] = await send(stack, sends)
            await asyncio.sleep(settle)
            own = {"broker": broker.pid} if bootstrap is None and broker.pid else {}
            window = CpuWindow({**stack.pids(), **own}).start()
            await asyncio.sleep(seconds)
            out["window"] = window.stop()
    finally:
        broker.stop()
    cores = {name: p["cores"] for name, p in out["window"]["processes"].items()}
    out["idle_cores"] = cores
    out["idle_worker_cores"] = cores["worker"]
    out["load_average_at_end"] = load_average()
    return out


async def send(stack: BenchStack, count: int) -> int:
    """``count`` sends at 50/s (a new destination each); how many answered 201."""
    use_case = await stack.create_use_case()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(base_url=stack.base_url, headers=headers) as client:
        sends = Sends(client, use_case["id"])
        await sends.run(rate=50.0, count=count)
    return len(sends.times)


def one_after_another(checkouts: list[Path], options: list[str]) -> list[dict[str, Any]]:
    """:func:`measure` in each checkout in turn (its own code on ``PYTHONPATH``)."""
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    results = []
    for n, checkout in enumerate(checkouts):
        env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        # By path, from the checkout's directory, so that its packages come first.
        run = f"import runpy; runpy.run_path({__file__!r}, run_name='__main__')"
        argv = [sys.executable, "-c", run, "--one", str(work / str(n)), *options]
        child = subprocess.run(
            argv, cwd=checkout, env=env, stdout=subprocess.PIPE, text=True, check=True
        )
        results.append(json.loads(child.stdout))
        print(json.dumps(results[-1]), file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", type=Path, help="source trees, in run order")
    parser.add_argument(
        "--bootstrap", metavar="HOST:PORT", help="this broker (else one of its own per tree)"
    )
    parser.add_argument("--stack", action="store_true", help="all four processes, each measured")
    parser.add_argument("--sends", type=int, default=0, help="with --stack: sends (50/s) first")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after ready")
    parser.add_argument("--seconds", type=float, default=60.0, help="the idle window")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE",
        help="a setting of the worker, e.g. kafka_fetch_max_wait_ms=500 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the results here too (JSON)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child: this checkout
    args = parser.parse_args()
    if args.one is not None:
        settings = dict(item.split("=", 1) for item in args.setting)
        result = measure(
            args.one, args.bootstrap, args.settle, args.seconds, settings,
            whole_stack=args.stack, sends=args.sends,
        )  # fmt: skip
        print(json.dumps(asyncio.run(result)))
        return
    if args.sends and not args.stack:
        parser.error("--sends needs --stack (the sends go through the ingress)")
    options = [
        *(["--bootstrap", args.bootstrap] if args.bootstrap else []),
        *(["--stack"] if args.stack else []), f"--sends={args.sends}",
        f"--settle={args.settle}", f"--seconds={args.seconds}",
        *(f"--setting={item}" for item in args.setting),
    ]  # fmt: skip
    runs = one_after_another(args.checkouts, options)
    text = json.dumps({"seconds": args.seconds, "settle": args.settle, "runs": runs}, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
