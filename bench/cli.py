"""``python -m bench``: run the benchmarks, write the results file and the summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.metadata
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.plan import PLANS, Run
from bench.procstat import load_average, machine_info
from bench.stack import BenchStack, Broker

log = logging.getLogger("bench")

SCENARIOS = ("send", "baseline", "callbacks", "sink", "state")
REPO = Path(__file__).resolve().parents[1]

#: What the results file of a smoke run must contain (checked by ``smoke`` and its test).
EXPECTED_KEYS: dict[str, tuple[str, ...]] = {
    "": ("date", "mode", "command", "machine", "versions", "targets", "comparisons"),
    "send": ("steps", "max_rate_p99_le_50ms", "max_achieved_rate"),
    "baseline": ("http", "kafka"),
    "callbacks": ("steps", "sustained", "max_sustained_rate"),
    "sink": ("events", "events_per_s"),
    "state": ("idle_rss_mb", "checkpoints"),
}

_DESCRIPTION = """\
End-to-end benchmarks of smslane on this machine. Starts a Kafka broker on a free port (or
uses --bootstrap), the worker, the sink, the ingress and the Twilio simulator, then runs:

  send       POST /v1/sms/ at 100, 250, 500, 1000, 2000 req/s (open loop)
  callbacks  signed status callbacks at 250 ... 3000/s, GET visibility lag, consumer lag
  baseline   (a) FastAPI + twilio without Kafka, same ladder; (b) raw aiokafka relay
  sink       bench/sink_throughput.py: sms.status -> SQL rows/s, the sink alone
  state      worker RSS, table size and restart-to-ready as live messages grow
  all        all of the above (under 20 minutes on 2 cores), writes BENCH.md too
  smoke      every scenario at tiny rates for a few seconds; checks the results file

Results go to bench/results/<date>[-<scenario>][-quick].json (see bench/README.md)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", choices=(*SCENARIOS, "all", "smoke"))
    parser.add_argument("--quick", action="store_true", help="5 s steps, smaller state sizes")
    parser.add_argument(
        "--bootstrap", metavar="HOST:PORT", help="use this broker instead of starting one"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results", help="results directory"
    )
    parser.add_argument(
        "--bench-md", type=Path, default=REPO / "BENCH.md",
        help="summary to write after `all` (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--no-bench-md", action="store_true", help="do not write the summary")
    parser.add_argument(
        "--profile", default="", metavar="NAMES",
        help="comma-separated processes to sample with py-spy during every step (worker, "
        "ingress, sink, twilio-sim): figures of a profiled run are disturbed",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-receiver", action="store_true",
        help="register one webhook endpoint (events sms.status, no filters) pointing at a "
        "receiver in this process that answers 204 at once; its tally goes under `webhooks`",
    )  # fmt: skip
    parser.add_argument("--database-url", help="store URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--max-load", type=float, default=None,
        help="wait (up to --load-wait s) for the 1-min load average to fall under this "
        "before starting (default: 1.0 for `all`, no wait otherwise)",
    )  # fmt: skip
    parser.add_argument("--load-wait", type=float, default=120.0)
    parser.add_argument(
        "--send-rates", type=_rates, metavar="R1,R2,...",
        help="the send (and baseline) ladder in requests/s instead of the mode's, e.g. "
        "50,100,150,200,300 to find the highest rate held between the usual steps",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="keep processes' logs and data here")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _rates(text: str) -> tuple[int, ...]:
    """``--send-rates``: positive integers, comma-separated, ascending."""
    try:
        rates = tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not rates or min(rates) <= 0 or list(rates) != sorted(rates):
        raise argparse.ArgumentTypeError(f"rates must be positive and ascending: {text!r}")
    return rates


def versions(broker: Broker) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("faust-streaming", "aiokafka", "fastapi", "uvicorn", "twilio", "aiohttp"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    out["kafka"] = (
        broker.started.settings.kafka_version
        if broker.started is not None
        else "external broker (--bootstrap)"
    )
    return out


def source_state() -> dict[str, Any]:
    """The commit measured, and the files changed on top of it (read-only git calls)."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    runtime = (
        "ingress/",
        "streams/",
        "sinks/",
        "store/",
        "feeds/",
        "schemas/",
        "smslane/",
        "twilio_sim/",
    )
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "runtime_files_changed_since_commit": sorted(c for c in changed if c.startswith(runtime)),
    }


def wait_for_low_load(limit: float | None, wait_s: float) -> dict[str, Any]:
    started = time.monotonic()
    first = load_average()
    if limit is not None:
        while load_average()[0] > limit and time.monotonic() - started < wait_s:
            log.warning("load average %s > %s: waiting", load_average(), limit)
            time.sleep(15)
    return {"before": first, "after": load_average(), "waited_s": round(time.monotonic() - started)}


async def run_scenarios(run: Run, names: Sequence[str]) -> dict[str, Any]:
    from bench.baselines import run_http_baseline, run_kafka_baseline
    from bench.callbacks import run_callbacks
    from bench.driver import LoadGen
    from bench.send import run_send
    from bench.state import run_state

    results: dict[str, Any] = {}
    if {"send", "baseline", "callbacks"} & set(names):
        webhooks = {"webhook_allow_private_urls": "on"} if run.webhook_receiver else {}
        stack = BenchStack(
            run.root / "stack", run.broker.bootstrap, database_url=run.database_url, **webhooks
        )
        with stack.running(start=False):
            started = time.monotonic()
            await asyncio.to_thread(stack.start, 120.0)
            results["stack_start_s"] = round(time.monotonic() - started, 1)
            use_case = (await stack.create_use_case())["id"]
            async with LoadGen() as gen, webhook_receiver(run, stack, results):
                if "send" in names:
                    log.warning("send: ladder %s/s, %.0f s each", run.plan.send_rates,
                                run.plan.send_step_s)  # fmt: skip
                    results["send"] = await run_send(run, stack, gen, use_case)
                if "baseline" in names:
                    log.warning("baseline (a): FastAPI + twilio, no Kafka")
                    http = await run_http_baseline(run, stack, gen, use_case)
                    results["baseline"] = {"http": http}
                if "callbacks" in names:
                    log.warning("callbacks: ladder %s/s", run.plan.callback_rates)
                    results["callbacks"] = await run_callbacks(run, stack, gen, use_case)
    if "baseline" in names:
        log.warning("baseline (b): raw aiokafka relay of %d messages", run.plan.raw_messages)
        results.setdefault("baseline", {})["kafka"] = await run_kafka_baseline(
            run, run.broker.bootstrap
        )
    if "sink" in names:
        from bench.sink_throughput import bench as sink_bench

        log.warning("sink: %d sms.status events into a fresh store", run.plan.sink_events)
        url = run.database_url or f"sqlite+aiosqlite:///{run.root / 'sink-bench.db'}"
        options = argparse.Namespace(
            bootstrap=run.broker.bootstrap, database_url=url, events=run.plan.sink_events,
            partitions=4, batch_size=1000,
        )  # fmt: skip
        results["sink"] = {"load_average_at_start": load_average(), **await sink_bench(options)}
    if "state" in names:
        log.warning("state: checkpoints %s", run.plan.state_checkpoints)
        results["state"] = await run_state(run)
    return results


async def status_events(stack: BenchStack) -> int:
    """How many events the stack's ``sms.status`` topic holds (its end offsets' sum)."""
    from bench.kafka import LagProbe
    from schemas.topics import Topics

    async with LagProbe(stack.bootstrap) as probe:
        ends = await probe.end_offsets([stack.topic(Topics.STATUS.base_name)])
    return sum(ends.values())


@contextlib.asynccontextmanager
async def webhook_receiver(
    run: Run, stack: BenchStack, results: dict[str, Any]
) -> AsyncIterator[None]:
    """With ``--webhook-receiver``: the receiver and its endpoint, its tally in ``results``."""
    if not run.webhook_receiver:
        yield
        return
    from bench.webhooks import CountingReceiver, register_endpoint

    receiver = CountingReceiver()
    await receiver.start()
    try:
        await register_endpoint(stack, receiver.url)
        yield
        during = receiver.tally()
        drain_s = await receiver.drained(quiet_s=5.0, limit_s=60.0)
        results["webhooks"] = {
            "url": receiver.url, "status_events": await status_events(stack),
            "during_scenarios": during, "drain_s": drain_s, "after_drain": receiver.tally(),
        }  # fmt: skip
    finally:
        await receiver.stop()


def missing_keys(results: dict[str, Any], names: Sequence[str]) -> list[str]:
    missing = [k for k in EXPECTED_KEYS[""] if k not in results]
    for name in names:
        section = results.get(name)
        if not isinstance(section, dict):
            missing.append(name)
            continue
        missing += [f"{name}.{k}" for k in EXPECTED_KEYS[name] if k not in section]
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )
    # Fresh topics make aiokafka log (and retry) NotLeaderForPartition at WARNING.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # Every child process (smslane's, the generator, the baselines) runs this checkout's code,
    # whatever the current directory or an editable install elsewhere would resolve.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    smoke = args.scenario == "smoke"
    mode = "smoke" if smoke else "quick" if args.quick else "full"
    names = SCENARIOS if args.scenario in ("all", "smoke") else (args.scenario,)
    limit = args.max_load
    if limit is None and args.scenario == "all":
        limit = 1.0
    load_wait = wait_for_low_load(limit, args.load_wait)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="smslane-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started, when = time.monotonic(), datetime.now(UTC)
    broker = Broker(args.bootstrap, root)
    plan = PLANS[mode]
    if args.send_rates:
        plan = dataclasses.replace(plan, send_rates=args.send_rates)
    run = Run(
        plan=plan,
        broker=broker,
        root=root,
        profile=tuple(p.strip() for p in args.profile.split(",") if p.strip()),
        database_url=args.database_url,
        webhook_receiver=args.webhook_receiver,
        deadline=started + plan.budget_s,
    )
    results: dict[str, Any] = {
        "date": when.date().isoformat(),
        "started_at": when.isoformat(timespec="seconds"),
        "mode": mode,
        "command": shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])]),
        "scenarios": list(names),
        "machine": machine_info(),
        "source": source_state(),
        "load_wait": load_wait,
        "profiled": list(run.profile),
        "plan": {k: v for k, v in vars(run.plan).items()},
    }
    try:
        broker.start()
        results["broker"] = {"bootstrap": broker.bootstrap, "started": broker.started is not None}
        results["versions"] = versions(broker)
        results.update(asyncio.run(run_scenarios(run, names)))
    finally:
        broker.stop()
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["comparisons"] = report.comparisons(results)
    results["targets"] = report.targets(results)
    results["notes"] = notes(results)
    suffix = "" if args.scenario == "all" and mode == "full" else (
        f"-{args.scenario}" if args.scenario not in ("all", "smoke") else ""
    ) + ("" if mode == "full" else f"-{mode}")  # fmt: skip
    suffix += "-webhooks" if run.webhook_receiver else ""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{results['date']}{suffix}.json"
    results["file"] = path.name
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"results: {path}")
    for row in results["targets"]:
        print(f"  {row['target']}: {row['measured']} ({row['goal']}) -> "
              f"{ {True: 'met', False: 'MISSED', None: 'n/a'}[row['met']] }")  # fmt: skip
    if args.scenario == "all" and not args.no_bench_md:
        old = args.bench_md.read_text() if args.bench_md.exists() else ""
        kept = old.split(report.KEEP_MARKER, 1)[1] if report.KEEP_MARKER in old else "\n"
        args.bench_md.write_text(report.markdown(results) + "\n" + report.KEEP_MARKER + kept)
        print(f"summary: {args.bench_md}")
    if smoke:
        missing = missing_keys(results, names)
        if missing:
            print(f"smoke: the results file lacks {missing}", file=sys.stderr)
            return 1
        print("smoke: ok")
    return 0


def notes(results: dict[str, Any]) -> list[str]:
    out = [
        "Latency is measured from each request's scheduled send time (open loop), so "
        "queueing in the generator's connection pool counts.",
        f"Load averages at the start of each step are in the results file; the machine's "
        f"at the start of the run: {results['machine']['load_average']}.",
    ]
    if os.cpu_count() and os.cpu_count() <= 2:  # type: ignore[operator]
        out.append(
            "On 2 cores every process competes with the others: the figures are those of the "
            "whole pipeline on one small machine, not of any process alone."
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
