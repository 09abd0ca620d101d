"""The processes a benchmark runs: a broker, and smslane's simulator, worker, sink and ingress.

Every :class:`BenchStack` has its own topic prefix (so its own topics, consumer groups and
Faust app id), data directory, SQLite database and ports, like ``tests/harness.py``'s stacks,
but with the production table store (``rocksdb://``) and the production partition count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from smslane.kafka_local import LocalKafka
from smslane.processes import Child, free_port, stack_env

API_KEY = "bench-api-key"
ADMIN_KEY = "bench-admin-key"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789"
SERVICE_SID = "MG" + "c" * 32
SENDERS = ("+14155550100", "+12125550100", "+13125550100", "+16175550100")
WEBHOOK_PATH = "/v1/webhook/twilio/sms-status"


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
            from schemas.settings import Settings

            settings = Settings(
                kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=root / "broker"
            )
            self.started = LocalKafka(settings, progress=lambda line: None)
            bootstrap = settings.kafka_bootstrap_servers
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


class BenchStack:
    """smslane's processes on one broker, one database, one topic prefix."""

    def __init__(
        self,
        root: Path,
        bootstrap: str,
        *,
        processes: tuple[str, ...] = ("twilio-sim", "worker", "sink", "ingress"),
        database_url: str | None = None,
        **settings: str,
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"b{uuid.uuid4().hex[:8]}."
        self.root = root = root / self.prefix.rstrip(".")  # never reuse a data directory
        self.http_port, self.sim_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        root.mkdir(parents=True, exist_ok=True)
        env = stack_env(
            root, bootstrap=bootstrap, prefix=self.prefix, http_port=self.http_port,
            sim_url=self.sim_url, api_key=API_KEY, admin_key=ADMIN_KEY,
            database_url=database_url,
            **{"table_store": "rocksdb://", **settings},
        )  # fmt: skip
        self.env = env
        logs = root / "logs"
        sim_args = [
            "twilio-sim", "--port", str(self.sim_port), "--callback-delay-ms", "0",
            "--scenario", "none",
            "--account", f"{ACCOUNT_SID}:{AUTH_TOKEN}",
            "--service", f"{SERVICE_SID}:{','.join(SENDERS)}",
        ]  # fmt: skip
        known = {
            "twilio-sim": Child("twilio-sim", sim_args, env, logs),
            "worker": Child("worker", ["worker"], env, logs),
            "sink": Child("sink", ["sink"], env, logs),
            "ingress": Child("ingress", ["ingress"], env, logs),
        }
        self.children = {name: known[name] for name in processes}

    # -- names -----------------------------------------------------------------------------

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def worker_group(self) -> str:
        return f"{self.prefix}smslane"

    @property
    def sink_group(self) -> str:
        return f"{self.prefix}smslane-sink"

    @property
    def ready_file(self) -> Path:
        return self.root / "var" / "worker.ready"

    @property
    def worker_data(self) -> Path:
        return self.root / "var" / "worker"

    def pids(self) -> dict[str, int]:
        return {n: c.pid for n, c in self.children.items() if c.pid is not None and c.alive()}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, timeout_s: float = 120.0) -> BenchStack:
        for child in self.children.values():
            child.start()
        if "twilio-sim" in self.children:
            await self._wait_http(f"{self.sim_url}/_sim/health", timeout_s, "simulator")
        if "worker" in self.children:
            await self.wait_worker_ready(timeout_s)
        if "ingress" in self.children:
            await self._wait_http(f"{self.base_url}/readyz", timeout_s, "ingress")
        return self

    async def wait_worker_ready(self, timeout_s: float = 120.0) -> float:
        """Seconds until ``worker.ready`` appears; raises if the worker dies or times out."""
        started = time.monotonic()
        while not self.ready_file.exists():
            self.children["worker"].check_alive()
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"worker not ready after {timeout_s:.0f}s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def _wait_http(self, url: str, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                for child in self.children.values():
                    child.check_alive()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {c.name} ---\n{c.tail(lines)}" for c in self.children.values())

    # -- set-up through the APIs -----------------------------------------------------------

    def client(self, key: str = API_KEY) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )

    async def create_use_case(self) -> dict[str, Any]:
        """A sending-ready use case (subaccount, verified brand and campaign, sender pool)."""
        async with self.client(ADMIN_KEY) as admin:
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

    async def configure_sim(self, **patch: Any) -> None:
        async with httpx.AsyncClient(base_url=self.sim_url, timeout=10.0) as sim:
            answer = await sim.post("/_sim/config", json=patch)
            assert answer.status_code == 200, answer.text


@contextlib.contextmanager
def running(stack: BenchStack) -> Iterator[BenchStack]:
    """Stop ``stack`` on the way out, printing its logs' tails if the body failed."""
    try:
        yield stack
    except BaseException:
        print(stack.logs(), flush=True)
        raise
    finally:
        stack.stop()
