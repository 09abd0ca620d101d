"""Baseline (b): raw aiokafka consume → produce, the Kafka floor of the Faust stage.

For every event read from ``--source`` (the same values, of the same sizes, the lifecycle
agent reads: created records and raw callbacks) it writes what the lifecycle agent writes per
event: one changelog-sized value and one ``sms.status``-sized value to ``--sink``, with the
worker's producer settings (acks=all, linger 5 ms), and commits every second like Faust does.
No decoding and no logic: the difference to the worker is the cost of Faust plus smslane's
per-event work. Run by the harness as::

    python -m bench.relay --bootstrap B --source T --sink T2 --group G --expect N \\
        --changelog-bytes 700 --status-bytes 600

Prints one JSON line: events, seconds from the first record read to the last write acked,
and the process's CPU seconds over that span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from bench.kafka import kafka_settings
from feeds import kafka_clients


async def relay(args: argparse.Namespace) -> dict[str, float | int]:
    settings = kafka_settings(args.bootstrap)
    consumer = kafka_clients.consumer(
        settings, args.source, group_id=args.group,
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1000,
    )  # fmt: skip
    producer = kafka_clients.producer(settings, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    changelog = b"c" * args.changelog_bytes
    status = b"s" * args.status_bytes
    seen, first_at, cpu0, last_commit = 0, 0.0, 0.0, time.monotonic()
    pending: list[asyncio.Future[object]] = []
    try:
        while seen < args.expect:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            for records in batches.values():
                for record in records:
                    if not first_at:
                        first_at, cpu0 = time.monotonic(), _cpu()
                    seen += 1
                    key = record.key
                    pending.append(await producer.send(args.sink, changelog, key=key))
                    pending.append(await producer.send(args.sink, status, key=key))
            if time.monotonic() - last_commit >= 1.0 or seen >= args.expect:
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit()
                last_commit = time.monotonic()
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - first_at
        return {"events": seen, "seconds": round(elapsed, 3), "cpu_s": round(_cpu() - cpu0, 3)}
    finally:
        await producer.stop()
        await consumer.stop()


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--changelog-bytes", type=int, required=True)
    parser.add_argument("--status-bytes", type=int, required=True)
    result = asyncio.run(relay(parser.parse_args()))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
