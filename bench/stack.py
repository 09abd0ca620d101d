"""The processes a benchmark runs: a broker, and smslane's simulator, worker, sink and ingress.

A :class:`BenchStack` is :class:`smslane.stack.Stack`, the stack the tests run too, with the
benchmark's accounts and what differs from a test stack: the production table store
(``rocksdb://``) and partition count, a simulator that calls back at once with no scenario,
and a data directory of its own under ``root`` for every stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from smslane import stack
from smslane.kafka_local import LocalKafka
from smslane.stack import PROCESSES, Accounts

API_KEY = "bench-api-key"
ADMIN_KEY = "bench-admin-key"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789"
SERVICE_SID = "MG" + "c" * 32
SENDERS = ("+14155550100", "+12125550100", "+13125550100", "+16175550100")
WEBHOOK_PATH = "/v1/webhook/twilio/sms-status"
ACCOUNTS = Accounts(API_KEY, ADMIN_KEY, ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, SENDERS)


def pid_listening_on(port: int) -> int | None:
    """The pid of the process with a TCP socket listening on ``port`` (from ``/proc``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(proc.name)
    return None


class Broker:
    """The broker of a run: one given by ``--bootstrap``, or a local one we start and stop."""

    def __init__(self, bootstrap: str | None, root: Path) -> None:
        self.started: LocalKafka | None = None
        if bootstrap is None:
            self.started = stack.local_broker(root / "broker", progress=lambda line: None)
            bootstrap = self.started.settings.kafka_bootstrap_servers
        self.bootstrap = bootstrap

    def start(self) -> Broker:
        if self.started is not None:
            self.started.start()
        return self

    @property
    def pid(self) -> int | None:
        if self.started is not None:
            return self.started.recorded_pid()
        return pid_listening_on(int(self.bootstrap.rsplit(":", 1)[1]))

    @property
    def data_dir(self) -> Path | None:
        return None if self.started is None else self.started.data

    def stop(self) -> None:
        if self.started is not None:
            self.started.stop()


class BenchStack(stack.Stack):
    """smslane's processes (all, or those named) on one broker, one database, one prefix."""

    def __init__(
        self,
        root: Path,
        bootstrap: str,
        *,
        processes: Sequence[str] = PROCESSES,
        database_url: str | None = None,
        scenario: str = "none",
        **settings: str,
    ) -> None:
        """``scenario``: the simulator's for every destination; ``none`` (no status
        callbacks) unless a benchmark counts what callbacks cost, e.g. ``delivered``."""
        prefix = f"b{uuid.uuid4().hex[:8]}."
        self.scenario = scenario
        super().__init__(
            root / prefix.rstrip("."),  # never reuse a data directory
            bootstrap,
            ACCOUNTS,
            prefix=prefix,
            processes=processes,
            sim_args=("--callback-delay-ms", "0", "--scenario", scenario),
            database_url=database_url,
            ingresses=1,
            **{"table_store": "rocksdb://", **settings},
        )

    async def create_use_case(self) -> dict[str, Any]:
        """A sending-ready use case (subaccount, verified brand and campaign, sender pool)."""
        async with self.admin() as admin:
            answer = await admin.put(
                f"/v1/admin/twilio-subaccounts/{ACCOUNT_SID}", json={"auth_token": AUTH_TOKEN}
            )
            assert answer.status_code in (200, 201), answer.text
            brand = f"brand-{uuid.uuid4().hex[:8]}"
            answer = await admin.put(
                f"/v1/admin/brands/{brand}", json={"name": "Bench", "status": "verified"}
            )
            assert answer.status_code in (200, 201), answer.text
            answer = await admin.post(
                "/v1/admin/sms-use-cases",
                json={
                    "name": "Benchmark", "account_sid": ACCOUNT_SID,
                    "messaging_service_sid": SERVICE_SID, "brand_id": brand,
                    "a2p_campaign_status": "verified", "permitted_regions": ["US", "CA"],
                    "active": True,
                },
            )  # fmt: skip
            assert answer.status_code == 201, answer.text
            use_case = dict(answer.json())
            for number in SENDERS:
                put = await admin.put(
                    f"/v1/admin/sms-use-cases/{use_case['id']}/phone-numbers/{number}",
                    json={"number_type": "long_code"},
                )
                assert put.status_code == 200, put.text
        return use_case


Result = TypeVar("Result")


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap`` and ``--setting NAME=VALUE``, read by :func:`run_on_stack`."""
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE",
        help="a setting of the stack's processes, e.g. kafka_fetch_max_wait_ms=10 (repeatable)",
    )  # fmt: skip


def run_on_stack(
    args: argparse.Namespace,
    name: str,
    body: Callable[[BenchStack, Broker], Coroutine[Any, Any, Result]],
) -> Result:
    """Start the broker (unless ``args.bootstrap``) and a whole :class:`BenchStack` with
    ``args.setting`` in a temporary directory, run ``body`` on them, stop everything."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        broker = Broker(args.bootstrap, Path(tmp)).start()
        try:
            settings = dict(item.split("=", 1) for item in args.setting)
            scenario = getattr(args, "scenario", "none")
            stack = BenchStack(Path(tmp), broker.bootstrap, scenario=scenario, **settings)
            with stack.running():
                return asyncio.run(body(stack, broker))
        finally:
            broker.stop()
