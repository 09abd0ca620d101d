"""Real smslane processes for integration tests: broker, simulator, worker, sink, ingress.

Every :class:`Stack` has its own topic prefix (hence its own topics, consumer groups and
Faust app id), data directory, database and ports, so stacks never see each other's data.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from smslane.kafka_local import LocalKafka
from smslane.processes import Child, free_port, stack_env, wait_until

API_KEY = "test-api-key"
ADMIN_KEY = "test-admin-key"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789"
SERVICE_SID = "MG" + "2" * 32
SENDERS = ("+14155550100", "+12125550100")


class Stack:
    """The simulator, the worker, the sink and the ingress on one broker and one database."""

    def __init__(
        self,
        root: Path,
        bootstrap: str,
        database_url: str | None = None,
        **settings: str,
    ) -> None:
        self.root = root
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        self.http_port = free_port()
        self.sim_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        root.mkdir(parents=True, exist_ok=True)
        defaults = {
            "table_store": "memory://",
            "topic_partitions": "2",
            "send_timeout_seconds": "20",
            "provider_max_attempts": "3",
        }
        env = stack_env(
            root, bootstrap=bootstrap, prefix=self.prefix, http_port=self.http_port,
            sim_url=self.sim_url, api_key=API_KEY, admin_key=ADMIN_KEY,
            database_url=database_url, **{**defaults, **settings},
        )  # fmt: skip
        self.env = env
        logs = root / "logs"
        logs.mkdir(exist_ok=True)
        sim_args = [
            "twilio-sim", "--port", str(self.sim_port),
            "--account", f"{ACCOUNT_SID}:{AUTH_TOKEN}",
            "--service", f"{SERVICE_SID}:{','.join(SENDERS)}",
        ]  # fmt: skip
        self.sim = Child("twilio-sim", sim_args, env, logs)
        self.worker = Child("worker", ["worker"], env, logs)
        self.sink = Child("sink", ["sink"], env, logs)
        self.ingress = Child("ingress", ["ingress"], env, logs)
        self.processes = [self.sim, self.worker, self.sink, self.ingress]

    @property
    def ready_file(self) -> Path:
        return self.root / "var" / "worker.ready"

    def start(self, timeout_s: float = 90.0) -> Stack:
        for process in self.processes:
            process.start()
        wait_until(lambda: self._http_ok(f"{self.sim_url}/_sim/health"), timeout_s, "simulator")
        self.wait_worker_ready(timeout_s)
        wait_until(lambda: self._http_ok(f"{self.base_url}/readyz"), timeout_s, "ingress ready")
        return self

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        """Start the stack, stop it after; on a failed start, show the processes' logs."""
        try:
            self.start()
        except Exception:
            self.stop()
            print(self.logs())
            raise
        try:
            yield self
        finally:
            self.stop()

    def wait_worker_ready(self, timeout_s: float = 90.0) -> None:
        def ready() -> bool:
            self.worker.check_alive()
            return self.ready_file.exists()

        wait_until(ready, timeout_s, "worker ready", interval_s=0.2)

    def restart_worker(self, sig: int = signal.SIGTERM) -> None:
        self.worker.stop(sig)
        self.ready_file.unlink(missing_ok=True)
        self.worker.start()
        self.wait_worker_ready()

    def _http_ok(self, url: str) -> bool:
        for process in self.processes:
            process.check_alive()
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail(60)}" for p in self.processes)

    def client(self, key: str = API_KEY) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )

    def admin(self) -> httpx.AsyncClient:
        return self.client(ADMIN_KEY)

    def sim_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.sim_url, timeout=10.0)

    async def read_topic(self, base_name: str, timeout_s: float = 15.0) -> list[ConsumerRecord]:
        """Every record of this stack's topic ``base_name``, read to the end of each partition
        (one ``getmany`` may return only some partitions)."""
        topic = f"{self.prefix}{base_name}"
        bootstrap = self.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        records: list[ConsumerRecord] = []
        try:
            partitions = [
                TopicPartition(topic, p) for p in range(await topic_partitions(bootstrap, topic))
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            deadline = time.monotonic() + timeout_s
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                assert time.monotonic() < deadline, f"{topic} could not be read to its end"
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
        finally:
            await consumer.stop()
        return records


async def topic_partitions(bootstrap: str, name: str) -> int:
    """How many partitions the topic ``name`` has on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([name])
        return len(description["partitions"])
    finally:
        await admin.close()


def docker_answers() -> bool:
    with contextlib.suppress(Exception):
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    return False


def start_local_broker(root: Path) -> tuple[str, LocalKafka]:
    """A broker of our own for this test session, from the cached Maven artifacts."""
    from schemas.settings import Settings

    port = free_port()
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        data_dir=root,
    )  # type: ignore[call-arg]
    broker = LocalKafka(settings)
    broker.start()
    return settings.kafka_bootstrap_servers, broker
