"""Webhook deliveries per second to a fast local receiver.

A worker and an ingress (``rocksdb://`` tables) on the given broker; one endpoint for
``sms.status`` pointing at an in-process aiohttp receiver that answers 204 at once; then
``--count`` record versions written straight to ``sms.status`` (as the lifecycle agent writes
them), each of its own record, so each is its own lane. It prints how long the receiver took
to get them all (deliveries/s) and the worker's CPU seconds per delivery.

    python -m bench.webhooks --bootstrap 127.0.0.1:19092 --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import web

from bench.kafka import make_records, producer, send_all
from bench.procstat import cpu_seconds
from bench.stack import BenchStack
from schemas.records import SmsStatusEvent
from schemas.topics import Topics

#: A new endpoint is in force this long after its 201 (docs/webhooks.md).
IN_FORCE_S = 5.0


class CountingReceiver:
    """Answers 204 to every POST and counts the event ids it saw."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        self.ids.add(body["id"])
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hooks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def tally(self) -> dict[str, int]:
        return {"requests": self.requests, "distinct_events": len(self.ids)}

    async def drained(self, quiet_s: float, limit_s: float) -> float:
        """Wait until no request came for ``quiet_s`` (at most ``limit_s``); the seconds waited."""
        started = last_change = time.monotonic()
        seen = self.requests
        while time.monotonic() - last_change < quiet_s and time.monotonic() - started < limit_s:
            await asyncio.sleep(0.2)
            if self.requests != seen:
                seen, last_change = self.requests, time.monotonic()
        return round(time.monotonic() - started, 1)


async def register_endpoint(stack: BenchStack, url: str) -> None:
    """One ``sms.status`` endpoint, no filters, in force when this returns."""
    async with stack.admin() as admin:
        answer = await admin.post(
            "/v1/admin/webhook-endpoints", json={"url": url, "events": ["sms.status"]}
        )
        assert answer.status_code == 201, answer.text
    await asyncio.sleep(IN_FORCE_S)


async def run(stack: BenchStack, count: int) -> dict[str, float]:
    receiver = CountingReceiver()
    await receiver.start()
    try:
        await register_endpoint(stack, receiver.url)
        events = [
            SmsStatusEvent(**record.model_dump(), version=1)
            for record in make_records(count, uuid.uuid4())
        ]
        items = ((str(e.id).encode(), Topics.STATUS.codec.encode(e)) for e in events)
        worker_pid = stack.worker.pid
        assert worker_pid is not None
        cpu_before = cpu_seconds(worker_pid) or 0.0
        started = time.monotonic()
        async with producer(stack.bootstrap) as prod:
            await send_all(prod, stack.topic(Topics.STATUS.base_name), items)
        while len(receiver.ids) < count:
            assert time.monotonic() - started < 600, f"{len(receiver.ids)} of {count} delivered"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        cpu = (cpu_seconds(worker_pid) or 0.0) - cpu_before
    finally:
        await receiver.stop()
    return {
        "deliveries": count,
        "requests": receiver.requests,
        "seconds": elapsed,
        "per_second": count / elapsed,
        "worker_cpu_ms_per_delivery": cpu * 1000 / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, metavar="HOST:PORT")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--dispatch-interval", default="0.2", help="seconds between dispatches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack(
            Path(tmp), args.bootstrap, processes=("worker", "ingress"),
            webhook_allow_private_urls="on",
            webhook_dispatch_interval_seconds=args.dispatch_interval,
        )  # fmt: skip
        with stack.running():
            result = asyncio.run(run(stack, args.count))
    for name, value in result.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
