"""Real smslane processes on one broker: the Twilio simulator, the worker, the sink, the ingress.

Tests (``tests/harness.py``) and benchmarks (``bench/stack.py``) both run theirs through
:class:`Stack`. Every stack has its own topic prefix (hence its own topics, consumer groups
and Faust app id), data directory, database and ports, so stacks never see each other's
data. What differs between a test stack and a benchmark stack is given as parameters: the
:class:`Accounts`, the settings (table store, partitions, timeouts), the simulator's
arguments and which processes run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import ConsumerRecord, TopicPartition

from feeds import kafka_clients
from schemas.settings import INBOUND_WEBHOOK_PATH, Settings
from sinks import runner
from smslane.kafka_local import LocalKafka
from smslane.processes import Child, free_port, stack_env, wait_until

log = logging.getLogger(__name__)

#: Every process of a stack, in the order they start (and the reverse of their stop).
PROCESSES = ("twilio-sim", "worker", "sink", "ingress")


@dataclass(frozen=True)
class Accounts:
    """The API keys of a stack and the Twilio account its simulator knows."""

    api_key: str
    admin_key: str
    account_sid: str
    auth_token: str
    service_sid: str
    senders: tuple[str, ...]


class Stack:
    """Some or all of :data:`PROCESSES` on one broker, one database, one topic prefix.

    ``settings`` are lower-case setting names (``table_store="rocksdb://"``). ``sim_args`` go
    to ``smslane twilio-sim`` before its ``--account`` and ``--service``. ``ingresses`` runs
    that many ingress processes (``ingress``, ``ingress-2``, ...), each on its own port
    (:attr:`ingress_urls`), all on the same topics and database.
    """

    def __init__(
        self,
        root: Path,
        bootstrap: str,
        accounts: Accounts,
        *,
        prefix: str,
        processes: Sequence[str] = PROCESSES,
        sim_args: Sequence[str] = (),
        database_url: str | None = None,
        ingresses: int = 1,
        **settings: str,
    ) -> None:
        self.root, self.bootstrap, self.accounts, self.prefix = root, bootstrap, accounts, prefix
        #: How this stack's own clients reach the broker: its processes' Kafka settings.
        kafka: dict[str, Any] = {k: v for k, v in settings.items() if k.startswith("kafka_")}
        self.kafka_settings = Settings(kafka_bootstrap_servers=bootstrap, **kafka)
        self.http_port, self.sim_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        #: Where the simulator sends the incoming messages of ``POST /_sim/inbound``.
        self.inbound_url = f"{self.base_url}{INBOUND_WEBHOOK_PATH}"
        root.mkdir(parents=True, exist_ok=True)
        self.env = stack_env(
            root, bootstrap=bootstrap, prefix=prefix, http_port=self.http_port,
            sim_url=self.sim_url, api_key=accounts.api_key, admin_key=accounts.admin_key,
            database_url=database_url, **settings,
        )  # fmt: skip
        sim = [
            "twilio-sim", "--port", str(self.sim_port), *sim_args,
            "--inbound-url", self.inbound_url,
            "--account", f"{accounts.account_sid}:{accounts.auth_token}",
            "--service", f"{accounts.service_sid}:{','.join(accounts.senders)}",
        ]  # fmt: skip
        commands = {
            "twilio-sim": sim,
            "worker": ["worker"],
            "sink": ["sink"],
            "ingress": ["ingress"],
        }
        self.children = {
            name: Child(name, commands[name], self.env, root / "logs") for name in processes
        }
        #: The base URL of every ingress, the first (:attr:`base_url`) included.
        self.ingress_urls = [self.base_url] if "ingress" in processes else []
        for number in range(2, ingresses + 1):
            self._add_ingress(f"ingress-{number}")

    def _add_ingress(self, name: str) -> None:
        """One more ingress process on a port of its own (same topics, same database)."""
        port = free_port()
        env = {**self.env, "SMSLANE_HTTP_PORT": str(port)}
        self.children[name] = Child(name, ["ingress"], env, self.root / "logs")
        self.ingress_urls.append(f"http://127.0.0.1:{port}")

    # -- names -----------------------------------------------------------------------------

    @property
    def sim(self) -> Child:
        return self.children["twilio-sim"]

    @property
    def worker(self) -> Child:
        return self.children["worker"]

    @property
    def sink(self) -> Child:
        return self.children["sink"]

    @property
    def ingress(self) -> Child:
        return self.children["ingress"]

    def topic(self, base_name: str) -> str:
        """This stack's name of the topic ``base_name`` (e.g. ``sms.status``)."""
        return f"{self.prefix}{base_name}"

    @property
    def worker_group(self) -> str:
        """The worker's consumer group (the Faust app id)."""
        return f"{self.prefix}smslane"

    @property
    def sink_group(self) -> str:
        """The sink's consumer group, named as the sink names it."""
        app_id = self.env.get("SMSLANE_APP_ID", Settings.model_fields["app_id"].default)
        return runner.sink_group(Settings(topic_prefix=self.prefix, app_id=app_id))

    @property
    def ready_file(self) -> Path:
        """Written by the worker once it is ready (tables recovered, configuration read)."""
        return self.root / "var" / "worker.ready"

    @property
    def worker_data(self) -> Path:
        """The worker's tables (RocksDB with ``table_store="rocksdb://"``)."""
        return self.root / "var" / "worker"

    def pids(self) -> dict[str, int]:
        """The pid of each running process, by name."""
        return {n: c.pid for n, c in self.children.items() if c.pid is not None and c.alive()}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> Stack:
        """Start every process, then wait until each answers (raises if one dies)."""
        for child in self.children.values():
            child.start()
        if "twilio-sim" in self.children:
            self._wait_http(f"{self.sim_url}/_sim/health", timeout_s, "simulator")
        if "worker" in self.children:
            self.wait_worker_ready(timeout_s)
        for url in self.ingress_urls:
            self._wait_http(f"{url}/readyz", timeout_s, f"ingress at {url} ready")
        return self

    def wait_worker_ready(self, timeout_s: float = 90.0) -> float:
        """Seconds until the worker's ready file appears; raises if the worker dies first."""
        started = time.monotonic()

        def ready() -> bool:
            self.worker.check_alive()
            return self.ready_file.exists()

        wait_until(ready, timeout_s, "worker ready", interval_s=0.05)
        return time.monotonic() - started

    def restart_worker(self, sig: int = signal.SIGTERM) -> None:
        """Stop the worker with ``sig``, start it again with its data, wait until ready."""
        self.worker.stop(sig)
        self.ready_file.unlink(missing_ok=True)
        self.worker.start()
        self.wait_worker_ready()

    def _wait_http(self, url: str, timeout_s: float, what: str) -> None:
        def answers() -> bool:
            for child in self.children.values():
                child.check_alive()
            try:
                return httpx.get(url, timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout_s, what, interval_s=0.1)

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()

    @contextlib.contextmanager
    def running(self, *, start: bool = True) -> Iterator[Stack]:
        """Start the stack (unless ``start`` is False: the caller does), stop it on the way
        out; if the start or the body fails, log the tails of the processes' logs."""
        try:
            if start:
                self.start()
            yield self
        except BaseException:
            log.error("the stack failed; its processes' logs end with:\n%s", self.logs())
            raise
        finally:
            self.stop()

    def logs(self, lines: int = 60) -> str:
        return "\n".join(f"--- {c.name} ---\n{c.tail(lines)}" for c in self.children.values())

    # -- clients ---------------------------------------------------------------------------

    def client(self, key: str | None = None, *, ingress: int = 0) -> httpx.AsyncClient:
        """An HTTP client of the first ingress (or of ``ingress_urls[ingress]``), with the
        API key (or ``key``)."""
        return httpx.AsyncClient(
            base_url=self.ingress_urls[ingress],
            headers={"Authorization": f"Bearer {key or self.accounts.api_key}"},
            timeout=30.0,
        )

    def admin(self) -> httpx.AsyncClient:
        return self.client(self.accounts.admin_key)

    def sim_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.sim_url, timeout=10.0)

    async def configure_sim(self, **patch: Any) -> None:
        """Change the simulator's configuration (``POST /_sim/config``)."""
        async with self.sim_client() as sim:
            answer = await sim.post("/_sim/config", json=patch)
            assert answer.status_code == 200, answer.text

    async def read_topic(self, base_name: str, timeout_s: float = 15.0) -> list[ConsumerRecord]:
        """Every record of this stack's topic ``base_name``, read to the end of each partition
        (one ``getmany`` may return only some partitions)."""
        topic = self.topic(base_name)
        consumer = kafka_clients.consumer(self.kafka_settings, enable_auto_commit=False)
        await consumer.start()
        records: list[ConsumerRecord] = []
        try:
            count = await topic_partitions(self.kafka_settings, topic)
            partitions = [TopicPartition(topic, p) for p in range(count)]
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


async def topic_partitions(settings: Settings | str, name: str) -> int:
    """How many partitions the topic ``name`` has on the broker (``settings``, or just its
    address for a PLAINTEXT broker)."""
    if isinstance(settings, str):
        settings = Settings(kafka_bootstrap_servers=settings)
    admin = kafka_clients.admin(settings)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([name])
        return len(description["partitions"])
    finally:
        await admin.close()


def local_broker(data_dir: Path, progress: Callable[[str], None] | None = None) -> LocalKafka:
    """A broker of our own on a free port (not started yet), from the cached Maven artifacts;
    its address is ``.settings.kafka_bootstrap_servers``."""
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port(span=2)}", data_dir=data_dir)
    return LocalKafka(settings) if progress is None else LocalKafka(settings, progress=progress)
