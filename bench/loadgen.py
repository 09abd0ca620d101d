"""The open-loop load generator, in a process of its own: ``python -m bench.loadgen``.

Reads one JSON command per line on standard input and answers on standard output with JSON
lines: ``{"event": "started", "t": <monotonic>}`` when the timed window opens, then
``{"event": "done", ...}`` with the results. Commands (see :mod:`bench.driver`):

- ``{"op": "send", ...}``: ``POST /v1/sms/`` (or the baseline's) at a fixed rate;
- ``{"op": "callbacks", ...}``: signed Twilio status callbacks (``sent`` then ``delivered`` for
  each message) at a fixed rate, and, for a sample of messages, ``GET /v1/sms/{id}`` polled
  from the ``delivered`` callback's 204 until the record shows ``delivered``;
- ``{"op": "quit"}``.

Open loop: request ``i`` is scheduled at ``t0 + i / rate`` whatever happened to the others, and
its latency is measured from that *scheduled* time, so time spent queueing (in this process,
waiting for a pooled connection, or in the server) is part of the figure (no coordinated
omission). Everything a request needs is prepared before the window opens. One
``aiohttp.ClientSession`` with a bounded connection pool serves every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from bench.stats import latency_summary

MESSAGE = "Your code is 123456"


def destination(n: int) -> str:
    """The ``n``-th destination: valid US numbers (+1 415 2xx-9xx xxxx), distinct up to 8M."""
    return f"+1415{2_000_000 + n % 8_000_000:07d}"


@dataclass
class Prepared:
    """One request, ready to fire."""

    url: str
    body: bytes
    headers: dict[str, str]
    on_ok: Callable[[float], None] | None = None


@dataclass
class Window:
    """What one timed window recorded."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    first_scheduled: float = 0.0
    last_completed: float = 0.0
    lateness: list[float] = field(default_factory=list)


async def _fire(
    session: aiohttp.ClientSession, req: Prepared, scheduled: float, window: Window, ok: int
) -> None:
    try:
        async with session.post(req.url, data=req.body, headers=req.headers) as resp:
            await resp.read()
            status = resp.status
    except TimeoutError:
        window.statuses["timeout"] += 1
        return
    except aiohttp.ClientError as exc:
        window.statuses[type(exc).__name__] += 1
        return
    now = time.monotonic()
    window.latencies.append(now - scheduled)
    window.statuses[str(status)] += 1
    window.last_completed = max(window.last_completed, now)
    if status == ok:
        window.ok += 1
        if req.on_ok is not None:
            req.on_ok(now)


async def open_loop(
    session: aiohttp.ClientSession,
    requests: list[Prepared],
    rate: float,
    *,
    ok: int,
    max_outstanding: int,
) -> Window:
    """Fire ``requests`` at ``rate`` per second, on schedule; wait for every answer."""
    window = Window()
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.monotonic() + 0.02
    window.first_scheduled = t0
    _say({"event": "started", "t": t0})
    for i, req in enumerate(requests):
        scheduled = t0 + i / rate
        delay = scheduled - time.monotonic()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        window.lateness.append(max(0.0, time.monotonic() - scheduled))
        if len(tasks) >= max_outstanding:
            window.statuses["not_sent_generator_backlog"] += 1
            continue
        task = asyncio.create_task(_fire(session, req, scheduled, window, ok))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    scheduled_end = time.monotonic()
    if tasks:
        await asyncio.gather(*tasks)
    window.last_completed = max(window.last_completed, scheduled_end)
    return window


def _window_result(window: Window, offered: int, rate: float, cpu: float) -> dict[str, Any]:
    span = max(window.last_completed - window.first_scheduled, 1e-9)
    lateness = sorted(window.lateness)
    return {
        "offered_rate": rate,
        "offered": offered,
        "ok": window.ok,
        "achieved_rate": round(window.ok / span, 1),
        "span_s": round(span, 2),
        "latency": latency_summary(window.latencies),
        "statuses": dict(window.statuses),
        "errors": sum(n for s, n in window.statuses.items() if not s.startswith("2")),
        "generator": {
            "cpu_s": round(cpu, 2),
            "lateness_p99_ms": round(lateness[int(0.99 * (len(lateness) - 1))] * 1000, 2)
            if lateness
            else None,
            "lateness_max_ms": round(lateness[-1] * 1000, 2) if lateness else None,
        },
    }


async def run_send(session: aiohttp.ClientSession, cmd: dict[str, Any]) -> dict[str, Any]:
    """``POST`` send bodies to distinct destinations at ``cmd["rate"]`` for ``duration_s``."""
    rate, count = float(cmd["rate"]), int(cmd["rate"] * cmd["duration_s"])
    headers = {**cmd["headers"], "Content-Type": "application/json"}
    first = int(cmd["number_start"])
    requests = [
        Prepared(
            cmd["url"],
            json.dumps(
                {
                    "use_case_id": cmd["use_case_id"],
                    "to_phone_number": destination(first + i),
                    "message": MESSAGE,
                }
            ).encode(),
            headers,
        )
        for i in range(count)
    ]
    cpu0 = _cpu()
    window = await open_loop(
        session, requests, rate, ok=201, max_outstanding=int(cmd["max_outstanding"])
    )
    return _window_result(window, count, rate, _cpu() - cpu0)


def callback_form(
    account_sid: str, service_sid: str, sid: str, to: str, status: str
) -> dict[str, str]:
    """The fields Twilio (and the simulator) send in a status callback."""
    return {
        "AccountSid": account_sid, "ApiVersion": "2010-04-01", "From": "+14155550100",
        "MessageSid": sid, "NumSegments": "1", "SmsSid": sid, "To": to,
        "MessagingServiceSid": service_sid, "MessageStatus": status, "SmsStatus": status,
    }  # fmt: skip


async def run_callbacks(session: aiohttp.ClientSession, cmd: dict[str, Any]) -> dict[str, Any]:
    """``sent`` then ``delivered`` for each message, signed; GET-visibility lag of a sample."""
    rate = float(cmd["rate"])
    # [message_sid, record id, to] per message
    messages: list[list[str]] = json.loads(await asyncio.to_thread(_read, cmd["messages_file"]))
    validator = RequestValidator(cmd["auth_token"])
    url, signed_url = cmd["url"], cmd["signed_url"]
    every = max(1, len(messages) // int(cmd["sample"]))
    lags: list[float] = []
    unseen: list[str] = []
    pollers: set[asyncio.Task[None]] = set()
    get_headers = {"Authorization": f"Bearer {cmd['api_key']}"}
    interval = float(cmd["poll_interval_s"])

    async def poll(record_id: str, since: float) -> None:
        deadline = since + float(cmd["visibility_timeout_s"])
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{cmd['get_url']}/{record_id}", headers=get_headers) as r:
                    body = await r.read()
                    if r.status == 200 and json.loads(body)["status"] == "delivered":
                        lags.append(time.monotonic() - since)
                        return
            # Fine-grained around the 1 s target; coarser after, not to flood the ingress.
            waited = time.monotonic() - since
            await asyncio.sleep(interval if waited < 1.5 else 0.1 if waited < 5 else 0.25)
        unseen.append(record_id)

    def watcher(record_id: str) -> Callable[[float], None]:
        def on_ok(at: float) -> None:
            task = asyncio.get_running_loop().create_task(poll(record_id, at))
            pollers.add(task)
            task.add_done_callback(pollers.discard)

        return on_ok

    requests: list[Prepared] = []
    for n, (sid, record_id, to) in enumerate(messages):
        for status in ("sent", "delivered"):
            form = callback_form(cmd["account_sid"], cmd["service_sid"], sid, to, status)
            headers = {
                "X-Twilio-Signature": validator.compute_signature(signed_url, form),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            sampled = status == "delivered" and n % every == 0
            on_ok = watcher(record_id) if sampled else None
            requests.append(Prepared(url, urlencode(form).encode(), headers, on_ok))
    cpu0 = _cpu()
    window = await open_loop(
        session, requests, rate, ok=204, max_outstanding=int(cmd["max_outstanding"])
    )
    if pollers:
        await asyncio.gather(*pollers)
    result = _window_result(window, len(requests), rate, _cpu() - cpu0)
    result["visibility"] = {
        **latency_summary(lags),
        "sampled": len(lags) + len(unseen),
        "not_visible": len(unseen),
        "poll_interval_ms": interval * 1000,
    }
    return result


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> None:
    handlers: dict[str, Callable[[aiohttp.ClientSession, dict[str, Any]], Awaitable[Any]]] = {
        "send": run_send,
        "callbacks": run_callbacks,
    }
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sessions: dict[tuple[int, float], aiohttp.ClientSession] = {}
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            key = (int(cmd["connections"]), float(cmd["timeout_s"]))
            if key not in sessions:
                sessions[key] = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=key[0], limit_per_host=key[0]),
                    timeout=aiohttp.ClientTimeout(total=key[1]),
                )
            result = await handlers[cmd["op"]](sessions[key], cmd)
            _say({"event": "done", "at": datetime.now(UTC).isoformat(), **result})
    finally:
        for session in sessions.values():
            await session.close()


def run() -> None:
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(main())


if __name__ == "__main__":
    run()
