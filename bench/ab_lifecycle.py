"""Worker CPU per lifecycle event of two checkouts, measured side by side.

    python -m bench.ab_lifecycle --bootstrap 127.0.0.1:19092 /path/to/before /path/to/after

Each checkout runs a worker of its own (``BenchStack``, worker alone, ``rocksdb://`` tables,
its own prefix), fed the same way as scenario ``state``: ``--messages`` records to
``sms.created``, then their ``sent`` and ``delivered`` callbacks to ``sms.callbacks``. Both
run at the same time, so whatever else loads the machine loads both: on a busy machine CPU
per event grows with the load, and only figures of the same run compare. The worker's CPU
(utime + stime from ``/proc``) over each phase, divided by its events, is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.kafka import LagProbe, callback_value, make_records, producer, send_all
from bench.procstat import cpu_seconds, load_average
from bench.stack import ACCOUNT_SID, SERVICE_SID, BenchStack


async def _phase(
    stack: BenchStack, probe: LagProbe, topic: str, items: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    pid = stack.pids()["worker"]
    cpu, started = cpu_seconds(pid) or 0.0, time.monotonic()
    async with producer(stack.bootstrap) as prod:
        await send_all(prod, stack.topic(topic), items)
    await probe.wait_drained({stack.worker_group: [stack.topic(topic)]}, 900)
    used, seconds = (cpu_seconds(pid) or 0.0) - cpu, time.monotonic() - started
    return {
        "events": len(items),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(items) / seconds),
        "worker_cpu_us_per_event": round(used / len(items) * 1e6, 1),
        "load_average_after": load_average(),
    }


async def measure(root: Path, bootstrap: str, messages: int) -> dict[str, Any]:
    """This checkout's worker: idle cores, then CPU per created and per callback event."""
    stack = BenchStack(root, bootstrap, processes=("worker",))
    out: dict[str, Any] = {"checkout": os.getcwd(), "load_average_at_start": load_average()}
    with stack.running(start=False):
        await asyncio.to_thread(stack.start, 120.0)
        await asyncio.sleep(2.0)
        pid = stack.pids()["worker"]
        idle = cpu_seconds(pid) or 0.0
        await asyncio.sleep(5.0)
        out["idle_worker_cores"] = round(((cpu_seconds(pid) or 0.0) - idle) / 5.0, 3)
        records = make_records(messages, uuid.uuid4(), 0)
        created = [(r.message_sid.encode(), r.model_dump_json().encode()) for r in records]
        callbacks = [
            (r.message_sid.encode(), callback_value(r, status, ACCOUNT_SID, SERVICE_SID))
            for status in ("sent", "delivered")
            for r in records
        ]
        async with LagProbe(stack.bootstrap) as probe:
            out["created"] = await _phase(stack, probe, "sms.created", created)
            out["callbacks"] = await _phase(stack, probe, "sms.callbacks", callbacks)
    return out


def side_by_side(checkouts: list[Path], bootstrap: str, messages: int) -> list[dict[str, Any]]:
    """Run :func:`measure` in every checkout at once (each with its own code on
    ``PYTHONPATH``, so its own worker); their results in the same order."""
    work = Path(tempfile.mkdtemp(prefix="ab-lifecycle-"))
    children = []
    for n, checkout in enumerate(checkouts):
        env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        # By path (the checkout measured need not have this file, only bench.stack & co.),
        # from the checkout's directory, so that its packages come first on the path.
        run = f"import runpy; runpy.run_path({__file__!r}, run_name='__main__')"
        argv = [sys.executable, "-c", run, "--one", str(work / str(n)),
                "--bootstrap", bootstrap, "--messages", str(messages)]  # fmt: skip
        children.append(
            subprocess.Popen(argv, cwd=checkout, env=env, stdout=subprocess.PIPE, text=True)
        )
    return [json.loads(child.communicate()[0]) for child in children]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", type=Path, help="two (or more) source trees")
    parser.add_argument("--bootstrap", required=True, metavar="HOST:PORT")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--out", type=Path, help="write the results here too (JSON)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child: this checkout
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(measure(args.one, args.bootstrap, args.messages))))
        return
    results = side_by_side(args.checkouts, args.bootstrap, args.messages)
    text = json.dumps({"messages": args.messages, "runs": results}, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
