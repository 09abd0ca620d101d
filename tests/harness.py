"""Real smslane processes for integration tests: broker, simulator, worker, sink, ingress.

A test :class:`Stack` is :class:`smslane.stack.Stack` (its own topic prefix, hence its own
topics, consumer groups and Faust app id, data directory, database and ports) with the test
accounts and the test defaults: in-memory tables, two partitions, a 20 s send timeout, three
provider attempts. Keyword settings override them.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from smslane import stack
from smslane.kafka_local import LocalKafka
from smslane.processes import free_port
from smslane.stack import Accounts, topic_partitions

__all__ = [
    "ACCOUNTS",
    "ACCOUNT_SID",
    "ADMIN_KEY",
    "API_KEY",
    "AUTH_TOKEN",
    "SENDERS",
    "SERVICE_SID",
    "Stack",
    "docker_answers",
    "free_port",
    "start_local_broker",
    "topic_partitions",
]

API_KEY = "test-api-key"
ADMIN_KEY = "test-admin-key"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789"
SERVICE_SID = "MG" + "2" * 32
SENDERS = ("+14155550100", "+12125550100")
ACCOUNTS = Accounts(API_KEY, ADMIN_KEY, ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, SENDERS)
DEFAULTS = {
    "table_store": "memory://",
    "topic_partitions": "2",
    "send_timeout_seconds": "20",
    "provider_max_attempts": "3",
}


class Stack(stack.Stack):
    """The simulator, the worker, the sink and the ingress on one broker and one database."""

    def __init__(
        self,
        root: Path,
        bootstrap: str,
        database_url: str | None = None,
        *,
        ingresses: int = 1,
        **settings: str,
    ) -> None:
        super().__init__(
            root,
            bootstrap,
            ACCOUNTS,
            prefix=f"t{uuid.uuid4().hex[:10]}.",
            database_url=database_url,
            ingresses=ingresses,
            **{**DEFAULTS, **settings},
        )


def docker_answers() -> bool:
    with contextlib.suppress(Exception):
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    return False


def start_local_broker(root: Path) -> tuple[str, LocalKafka]:
    """A broker of our own for this test session, from the cached Maven artifacts."""
    broker = stack.local_broker(root)
    broker.start()
    return broker.settings.kafka_bootstrap_servers, broker
