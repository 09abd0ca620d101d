"""Scenario ``restarts``: time from a worker's stop or death to working sends again.

"Ready" is not "working": each round measures, from the signal, when the first send answers
201 and when every send that started in the first two seconds after the signal has answered
201 (probes go every 100 ms with their own Idempotency-Key, so they spread over every
partition, the dead worker's included). Three cases, ``--rounds`` times each:

- ``sigterm``: SIGTERM, the worker started again at once with its data directory;
- ``sigkill``: the same with SIGKILL (the dead member's session must time out);
- ``cold``: SIGKILL, the data directory deleted, started again: its tables come back from
  their changelogs (in bulk, before it joins its group);
- ``failover``: two workers; one gets SIGKILL and is not restarted: the other takes over.

    python -m bench.restarts [--rounds 3] [--bootstrap HOST:PORT] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.stack import BenchStack, Broker
from smslane.processes import Child, free_port, wait_until

PROBE_EVERY_S = 0.1
PROBE_WINDOW_S = 2.0


async def _probe(client: httpx.AsyncClient, use_case_id: str, started: float) -> float | None:
    """Send until 201 (retrying 503/504 like a client); seconds from ``started`` to it."""
    key = str(uuid.uuid4())
    body = {"use_case_id": use_case_id, "to_phone_number": _number(), "message": "probe"}
    for _ in range(60):
        try:
            answer = await client.post("/v1/sms/", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if answer.status_code == 201:
            return time.monotonic() - started
        if answer.status_code not in (503, 504):
            return None
        await asyncio.sleep(0.2)
    return None


def _number() -> str:
    return f"+14153{uuid.uuid4().int % 1_000_000:06d}"


async def _measure(stack: BenchStack, use_case_id: str, act: Any) -> dict[str, Any]:
    """Fire probes from the signal on; ``act`` signals (and restarts) in a thread."""
    async with stack.client() as client:
        started = time.monotonic()
        acting = asyncio.create_task(asyncio.to_thread(act))
        probes = []
        while time.monotonic() - started < PROBE_WINDOW_S:
            probes.append(asyncio.create_task(_probe(client, use_case_id, started)))
            await asyncio.sleep(PROBE_EVERY_S)
        answered = await asyncio.gather(*probes)
        await acting
    ok = [t for t in answered if t is not None]
    return {
        "probes": len(answered),
        "failed": len(answered) - len(ok),
        "first_201_s": round(min(ok), 2) if ok else None,
        "all_201_s": round(max(ok), 2) if len(ok) == len(answered) else None,
    }


def _second_worker(stack: BenchStack) -> Child:
    env = {
        **stack.env,
        "SMSLANE_DATA_DIR": str(stack.root / "var2"),
        "SMSLANE_WORKER_METRICS_PORT": str(free_port()),
    }
    return Child("worker2", ["worker"], env, stack.root / "logs")


def _wait_ready(worker: Child, timeout_s: float = 120.0) -> None:
    """Until ``worker`` has written its ready file; raises if it dies first."""
    ready = Path(worker.env["SMSLANE_DATA_DIR"]) / "worker.ready"
    wait_until(lambda: worker.check_alive() or ready.exists(), timeout_s, f"{worker.name} ready")


async def run_restarts(bootstrap: str, root: Path, rounds: int) -> dict[str, Any]:
    stack = BenchStack(root, bootstrap)
    results: dict[str, list[dict[str, Any]]] = {
        "sigterm": [], "sigkill": [], "cold": [], "failover": [],
    }  # fmt: skip
    with stack.running(start=False):
        await asyncio.to_thread(stack.start, 120.0)
        use_case = (await stack.create_use_case())["id"]
        worker = stack.worker
        cases = (("sigterm", signal.SIGTERM), ("sigkill", signal.SIGKILL),
                 ("cold", signal.SIGKILL))  # fmt: skip
        for case, sig in cases:
            for _ in range(rounds):

                def restart(sig: signal.Signals = sig, cold: bool = case == "cold") -> None:
                    worker.stop(sig)
                    stack.ready_file.unlink(missing_ok=True)
                    if cold:
                        shutil.rmtree(stack.worker_data, ignore_errors=True)
                    worker.start()

                results[case].append(await _measure(stack, use_case, restart))
                await asyncio.to_thread(stack.wait_worker_ready, 120.0)
                print(case, results[case][-1], flush=True)
        for _ in range(rounds):
            second = _second_worker(stack)
            second.start()
            await asyncio.to_thread(_wait_ready, second)
            await asyncio.sleep(8)  # the rebalance that gives it half the partitions
            results["failover"].append(
                await _measure(stack, use_case, lambda s=second: s.stop(signal.SIGKILL))
            )
            print("failover", results["failover"][-1], flush=True)
    return {
        "scenario": "restarts",
        "date": datetime.now(UTC).isoformat(),
        "rounds": results,
        "summary": {case: _summary(runs) for case, runs in results.items()},
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "first_201_s_median": median("first_201_s"),
        "all_201_s_median": median("all_201_s"),
        "all_201_s_max": max((r["all_201_s"] or float("inf") for r in runs), default=None),
        "failed_probes": sum(r["failed"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (3)")
    parser.add_argument("--bootstrap", help="an existing broker (else a local one is started)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smslane-bench-") as tmp:
        broker = Broker(args.bootstrap, Path(tmp)).start()
        try:
            result = asyncio.run(run_restarts(broker.bootstrap, Path(tmp), args.rounds))
        finally:
            broker.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{datetime.now(UTC):%Y-%m-%d}-restarts.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
