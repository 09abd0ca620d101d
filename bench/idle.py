"""An idle worker's CPU, per source tree, one tree after the other.

    python -m bench.idle --bootstrap 127.0.0.1:19092 BEFORE_TREE AFTER_TREE BEFORE_TREE ...

Each tree runs a worker alone (``BenchStack``, ``rocksdb://`` tables, a topic prefix of its
own) on the named broker; once it is ready and has settled, the worker's CPU time (utime +
stime from ``/proc/<pid>/stat``, its threads included) over ``--seconds`` of idleness, as
cores. Nothing is sent to it. Trees run in the order given, so alternate them (``A B A B``):
on a shared machine the load drifts, and process CPU time is what compares.
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

from bench.procstat import CpuWindow, load_average
from bench.stack import BenchStack


async def measure(
    root: Path, bootstrap: str, settle: float, seconds: float, settings: dict[str, str]
) -> dict[str, Any]:
    """This checkout's worker, started and settled, then left idle for ``seconds``."""
    stack = BenchStack(root, bootstrap, processes=("worker",), **settings)
    out: dict[str, Any] = {
        "checkout": str(Path.cwd()), "settings": settings, "load_average_at_start": load_average()
    }  # fmt: skip
    with stack.running(start=False):
        await asyncio.to_thread(stack.start, 120.0)
        await asyncio.sleep(settle)
        window = CpuWindow({"worker": stack.pids()["worker"]}).start()
        await asyncio.sleep(seconds)
        out["window"] = window.stop()
    out["idle_worker_cores"] = out["window"]["processes"]["worker"]["cores"]
    out["load_average_at_end"] = load_average()
    return out


def one_after_another(
    checkouts: list[Path], bootstrap: str, settle: float, seconds: float, settings: list[str]
) -> list[dict[str, Any]]:
    """:func:`measure` in each checkout in turn (its own code on ``PYTHONPATH``)."""
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    results = []
    for n, checkout in enumerate(checkouts):
        env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        # By path, from the checkout's directory, so that its packages come first.
        run = f"import runpy; runpy.run_path({__file__!r}, run_name='__main__')"
        argv = [sys.executable, "-c", run, "--one", str(work / str(n)), "--bootstrap",
                bootstrap, "--settle", str(settle), "--seconds", str(seconds),
                *(f"--setting={item}" for item in settings)]  # fmt: skip
        child = subprocess.run(
            argv, cwd=checkout, env=env, stdout=subprocess.PIPE, text=True, check=True
        )
        results.append(json.loads(child.stdout))
        print(json.dumps(results[-1]), file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", type=Path, help="source trees, in run order")
    parser.add_argument("--bootstrap", required=True, metavar="HOST:PORT")
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
        result = measure(args.one, args.bootstrap, args.settle, args.seconds, settings)
        print(json.dumps(asyncio.run(result)))
        return
    runs = one_after_another(
        args.checkouts, args.bootstrap, args.settle, args.seconds, args.setting
    )
    text = json.dumps({"seconds": args.seconds, "settle": args.settle, "runs": runs}, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
