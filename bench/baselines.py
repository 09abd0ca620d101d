"""Scenario ``baseline``: the same work without smslane's machinery, on the same machine.

(a) ``http``: :mod:`bench.baseline_app` (FastAPI + twilio, no Kafka) through the same send
    ladder as scenario ``send``, against the same simulator.
(b) ``kafka``: :mod:`bench.relay`, raw aiokafka consume → produce of the lifecycle agent's
    input events (created records, then ``sent`` and ``delivered`` callbacks), on the same
    broker; compared per event with the worker in scenario ``state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from typing import Any

import httpx
from aiokafka.admin import NewTopic

from bench.driver import LoadGen
from bench.kafka import callback_value, kafka_settings, make_records, producer, send_all
from bench.plan import Run
from bench.procstat import load_average
from bench.send import http_ladder, send_command, summarize_ladder
from bench.stack import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, BenchStack
from feeds import kafka_clients
from schemas.records import SmsStatus, SmsStatusEvent
from smslane.processes import free_port, wait_until_async

log = logging.getLogger(__name__)


async def run_http_baseline(
    run: Run, stack: BenchStack, gen: LoadGen, use_case_id: str
) -> dict[str, Any]:
    """The send ladder against the no-Kafka FastAPI app."""
    await stack.configure_sim(default_scenario="none", callback_delay_ms=0)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.baseline_app", "--port", str(port),
        "--sim-url", stack.sim_url, "--account", f"{ACCOUNT_SID}:{AUTH_TOKEN}",
        "--service", SERVICE_SID,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as client:

            async def answers() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                return False

            await wait_until_async(answers, 20, "the baseline app")
        url = f"http://127.0.0.1:{port}/v1/sms/"
        pids = {"baseline_app": proc.pid, "twilio-sim": stack.pids()["twilio-sim"]}
        await gen.run(send_command(run, url, use_case_id, 100, run.plan.warmup_s), pids)

        async def no_drain() -> float:
            await asyncio.sleep(1.0)
            return 0.0

        steps = await http_ladder(
            run,
            gen,
            pids,
            lambda rate: send_command(run, url, use_case_id, rate, run.plan.send_step_s),
            run.plan.send_rates,
            no_drain,
        )
    finally:
        proc.terminate()
        await proc.wait()
    return {
        "what": "bench/baseline_app.py: FastAPI + twilio async client, Lookup + create, no Kafka",
        "steps": steps,
        **summarize_ladder(steps),
    }


def output_sizes(use_case_id: uuid.UUID) -> tuple[int, int, int]:
    """Bytes of a created record, a changelog value and an ``sms.status`` value."""
    record = make_records(1, use_case_id)[0]
    delivered = record.model_copy(
        update={"status": SmsStatus.DELIVERED, "from_number": "+14155550100", "num_segments": 1,
                "handed_off_at": record.created_at, "delivered_at": record.created_at},
    )  # fmt: skip
    status = SmsStatusEvent(**delivered.model_dump(), version=3).model_dump_json()
    changelog = json.dumps(
        {"record": json.loads(delivered.model_dump_json()), "version": 3,
         "last_receipt": str(uuid.uuid4())}, separators=(",", ":"),
    )  # fmt: skip
    return len(record.model_dump_json()), len(changelog), len(status)


async def run_kafka_baseline(run: Run, bootstrap: str, partitions: int = 4) -> dict[str, Any]:
    """Pre-produce the lifecycle agent's input, then time a raw relay through all of it."""
    messages = run.plan.raw_messages
    name = f"braw{uuid.uuid4().hex[:8]}"
    source, sink = f"{name}.in", f"{name}.out"
    admin = kafka_clients.admin(kafka_settings(bootstrap))
    await admin.start()
    load = load_average()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in (source, sink)])
        use_case = uuid.uuid4()
        records = make_records(messages, use_case)
        async with producer(bootstrap) as prod:
            await send_all(
                prod, source,
                ((r.message_sid.encode(), r.model_dump_json().encode()) for r in records),
            )  # fmt: skip
            for status in ("sent", "delivered"):
                await send_all(
                    prod, source,
                    ((r.message_sid.encode(), callback_value(r, status, ACCOUNT_SID, SERVICE_SID))
                     for r in records),
                )  # fmt: skip
        _, changelog_bytes, status_bytes = output_sizes(use_case)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.relay", "--bootstrap", bootstrap,
            "--source", source, "--sink", sink, "--group", f"{name}-relay",
            "--expect", str(3 * messages), "--changelog-bytes", str(changelog_bytes),
            "--status-bytes", str(status_bytes), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"bench.relay failed with status {proc.returncode}")
        result = json.loads(out)
    finally:
        await admin.delete_topics([source, sink])
        await admin.close()
    events, seconds, cpu = result["events"], result["seconds"], result["cpu_s"]
    return {
        "what": "bench/relay.py: aiokafka consume -> 2 produces per event, acks=all, commit 1 s",
        "load_average_at_start": load,
        "events": events,
        "seconds": seconds,
        "events_per_s": round(events / max(seconds, 1e-9)),
        "cpu_s": cpu,
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
        "value_bytes": {"changelog": changelog_bytes, "status": status_bytes},
    }
