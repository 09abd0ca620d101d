"""Fault injection on the production configuration (RocksDB tables, real broker, real
processes): the ingress is killed (SIGKILL) while signed status callbacks stream in.

The property: a callback answered 204 is durable. The poster behaves like Twilio with
``#rc=3&rp=all``: a callback that got no answer (connection refused or cut) or a 503 is
posted again until it gets one; one that got 204 is never posted again. After the kill and
the restart, every record is at the status its acknowledged callbacks carried, over
``GET /v1/sms/{id}`` and as the last of its contiguous versions on ``sms.status``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_lifecycle import WEBHOOK, callback_params, signed, wait_for
from tests.integration.test_send import send

pytestmark = pytest.mark.integration

#: Per message: the Twilio statuses posted, in order, and the record's statuses on
#: ``sms.status`` they lead to (``queued`` is ``pending``, already the record's status).
PLANS = [
    (("sent", "delivered"), ("pending", "sent", "delivered")),
    (("sent", "undelivered"), ("pending", "sent", "undelivered")),
    (("queued", "failed"), ("pending", "failed")),
    (("sent",), ("pending", "sent")),
]
MESSAGES = 8  # two of each plan
POSTERS = 4
KILL_AFTER = 6  # acknowledged callbacks before the ingress is killed


@pytest.fixture(scope="module")
def rocksdb_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("faults"), kafka_bootstrap, table_store="rocksdb://")
    with running.running():
        yield running


@dataclass
class Poster:
    """Posts each message's callbacks in order; retries one until it is answered 204."""

    stack: Stack
    acknowledged: list[tuple[str, str]] = field(default_factory=list)
    """(MessageSid, MessageStatus) of every callback answered 204, in that order."""
    failures: Counter[str] = field(default_factory=Counter)
    """Answers other than 204, and transport errors, by kind."""

    async def post_all(self, sid: str, statuses: tuple[str, ...], deadline: float) -> None:
        async with httpx.AsyncClient(base_url=self.stack.base_url, timeout=5.0) as http:
            for status in statuses:
                await self._post_until_acknowledged(http, sid, status, deadline)
                await asyncio.sleep(0.05)  # a stream, not a burst: the kill lands mid-way

    async def _post_until_acknowledged(
        self, http: httpx.AsyncClient, sid: str, status: str, deadline: float
    ) -> None:
        params = callback_params(sid, status)
        while time.monotonic() < deadline:
            try:
                answer = await http.post(WEBHOOK, data=params, headers=signed(self.stack, params))
            except httpx.TransportError as exc:
                self.failures[type(exc).__name__] += 1
            else:
                if answer.status_code == 204:
                    self.acknowledged.append((sid, status))
                    return
                assert answer.status_code == 503, answer.text  # not ready yet: retry
                self.failures["503"] += 1
            await asyncio.sleep(0.1)
        raise AssertionError(f"{sid} {status} was never acknowledged")


async def kill_and_restart_ingress(stack: Stack, poster: Poster, deadline: float) -> float:
    """SIGKILL the ingress once ``KILL_AFTER`` callbacks are acknowledged, start it again,
    wait until it is ready; the seconds it was away."""
    while len(poster.acknowledged) < KILL_AFTER:
        assert time.monotonic() < deadline, "the callbacks never got going"
        await asyncio.sleep(0.01)
    killed_at = time.monotonic()
    stack.ingress.stop(signal.SIGKILL)
    stack.ingress.start()
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            stack.ingress.check_alive()
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return time.monotonic() - killed_at
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the restarted ingress never got ready")


async def send_messages(stack: Stack) -> list[dict[str, str]]:
    """``MESSAGES`` records sent through the stack, for which the simulator sends no callback."""
    numbers = [unique_number() for _ in range(MESSAGES)]
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        configured = await sim.post(
            "/_sim/config", json={"scenarios": dict.fromkeys(numbers, "none")}
        )
        assert configured.status_code == 200, configured.text
        use_case = await create_use_case(admin)
        records = []
        for to in numbers:
            answer = await send(client, use_case["id"], to)
            assert answer.status_code == 201, answer.text
            records.append(answer.json())
    return records


@pytest.mark.timeout(180)
async def test_ingress_killed_mid_callbacks_loses_no_acknowledged_callback(
    rocksdb_stack: Stack,
) -> None:
    stack = rocksdb_stack
    records = await send_messages(stack)
    plans = {r["message_sid"]: PLANS[i % len(PLANS)] for i, r in enumerate(records)}
    poster = Poster(stack)
    deadline = time.monotonic() + 90
    queue = list(plans.items())

    async def post_some() -> None:
        while queue:
            sid, (statuses, _) = queue.pop(0)
            await poster.post_all(sid, statuses, deadline)

    away, *_ = await asyncio.gather(
        kill_and_restart_ingress(stack, poster, deadline),
        *(post_some() for _ in range(POSTERS)),
    )
    # The kill landed while callbacks were being posted, and some found no ingress.
    assert len(poster.acknowledged) >= KILL_AFTER and sum(poster.failures.values()) > 0
    assert len(poster.acknowledged) == sum(len(s) for s, _ in plans.values())
    print(f"ingress away {away:.1f}s; failed attempts {dict(poster.failures)}")

    expected = {r["id"]: plans[r["message_sid"]][1] for r in records}
    for record_id, statuses in expected.items():
        final = statuses[-1]
        await wait_for(stack, record_id, lambda r, final=final: r["status"] == final, 30)
    history: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for message in await stack.read_topic("sms.status"):
        value = json.loads(message.value)
        if value["id"] in expected:
            history[value["id"]].append((value["version"], value["status"]))
    for record_id, statuses in expected.items():
        assert history[record_id] == list(enumerate(statuses, 1)), history[record_id]
