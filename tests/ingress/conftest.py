"""The ingress in-process: its routes through ``httpx.ASGITransport``, no Kafka, no database.

The app's lifespan does not run (ASGITransport sends no lifespan events): the bridge and the
store are swapped for the in-memory fakes below through ``app.dependency_overrides``. These
are tests of the HTTP shape (status codes, bodies, headers, the OpenAPI document); the
integration tests run the same routes against real processes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from feeds.config import ConfigView
from feeds.secret_box import SecretBox, new_key
from ingress.app import create_app
from ingress.deps import get_bridge, get_store
from schemas.config import ConfigChange, ConfigEntity, config_key
from schemas.errors import ServiceUnavailable
from schemas.events import CancelRequest, RawCallback, SendReply, SendRequest
from schemas.inbound import InboundMessage
from schemas.records import SmsRecord, SmsStatus
from schemas.settings import Settings
from store import InboundQuery, InvalidCursor

API_KEY = "inprocess-api-key"
ADMIN_KEY = "inprocess-admin-key"
BASE_URL = "http://ingress.test"
SECRET_KEY = new_key()


def created(send: SendRequest) -> SendReply:
    """The worker's 201 for ``send``: a new pending record."""
    now = datetime.now(UTC)
    record = SmsRecord(
        id=uuid.uuid4(),
        use_case_id=send.use_case_id,
        message_sid="SM" + uuid.uuid4().hex,
        to_number=send.to_phone_number,
        body=send.message,
        created_at=now,
        updated_at=now,
    )
    return SendReply(
        correlation_id=send.correlation_id,
        request_id=send.request_id,
        status_code=201,
        record=record,
    )


def canceled(cancel: CancelRequest) -> SendReply:
    """The worker's 200 for ``cancel``: the record canceled now."""
    now = datetime.now(UTC)
    record = cancel.record.model_copy(
        update={"status": SmsStatus.CANCELED, "canceled_at": now, "updated_at": now}
    )
    return SendReply(
        correlation_id=cancel.correlation_id, request_id=record.id, status_code=200, record=record
    )


class FakeBridge:
    """What the routes use of ``KafkaBridge``, in memory: a config write is applied at once,
    a send is answered by ``reply`` (the worker's 201 by default)."""

    def __init__(self) -> None:
        self.secrets = SecretBox([SECRET_KEY])
        self.config = ConfigView(self.secrets)
        self.config.caught_up.set()
        self.config.problem = None
        self.config.confirmed_at = time.monotonic() + 3600  # current for the whole test
        self.connected = True
        self.replies_topic = "sms.send-replies"
        self.reply: Callable[[SendRequest], SendReply] = created
        self.sent: list[SendRequest] = []
        self.cancel_reply: Callable[[CancelRequest], SendReply] = canceled
        self.cancels: list[CancelRequest] = []
        self.callbacks: list[tuple[str, RawCallback]] = []
        self.inbound: list[InboundMessage] = []
        self._offset = -1

    @property
    def config_offset(self) -> int:
        return self.config.applied_offset

    def new_correlation_id(self) -> str:
        return uuid.uuid4().hex

    async def request_send(self, send: SendRequest) -> SendReply:
        self.sent.append(send)
        return self.reply(send)

    async def request_cancel(self, cancel: CancelRequest) -> SendReply:
        self.cancels.append(cancel)
        return self.cancel_reply(cancel)

    async def publish_config(self, entity: ConfigEntity) -> None:
        self._offset += 1
        value = ConfigChange(entity=entity).model_dump_json().encode()
        self.config.apply(config_key(entity), value, self._offset)

    async def delete_config(self, key: str) -> None:
        self._offset += 1
        self.config.apply(key, None, self._offset)

    async def publish_callback(self, sid: str, callback: RawCallback) -> None:
        self.callbacks.append((sid, callback))

    async def publish_inbound(self, message: InboundMessage) -> None:
        self.inbound.append(message)

    async def ping(self) -> None:
        if not self.connected:
            raise ServiceUnavailable("Kafka is not connected.")


class FakeStore:
    """What the routes use of ``Store``: records by id, listed within ``use_case_ids`` (an
    API key's scope); the cursor ``"bogus"`` is invalid."""

    def __init__(self) -> None:
        self.records: dict[uuid.UUID, SmsRecord] = {}
        self.healthy = True
        self.listed: list[dict[str, Any]] = []
        self.inbound_queries: list[InboundQuery] = []

    async def get_record(self, record_id: uuid.UUID) -> SmsRecord | None:
        return self.records.get(record_id)

    async def list_records(self, **filters: Any) -> tuple[list[SmsRecord], str | None]:
        self.listed.append(filters)
        if filters.get("cursor") == "bogus":
            raise InvalidCursor()
        scope, one = filters.get("use_case_ids"), filters.get("use_case_id")
        items = [
            r
            for r in self.records.values()
            if (scope is None or r.use_case_id in scope) and one in (None, r.use_case_id)
        ]
        items.sort(key=lambda r: r.created_at, reverse=True)
        return items[: filters["limit"]], None

    async def list_inbound(self, query: InboundQuery) -> tuple[list[InboundMessage], str | None]:
        self.inbound_queries.append(query)
        if query.cursor == "bogus":
            raise InvalidCursor()
        return [], None

    async def ping(self) -> None:
        if not self.healthy:
            raise ConnectionError("the database does not answer")


@pytest.fixture
def settings() -> Settings:
    return Settings(
        api_keys=(API_KEY,),
        admin_api_keys=(ADMIN_KEY,),
        public_base_url=BASE_URL,
        secret_keys=(SECRET_KEY,),
    )


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def app(settings: Settings, bridge: FakeBridge, store: FakeStore) -> FastAPI:
    app = create_app(settings)
    app.dependency_overrides[get_bridge] = lambda: bridge
    app.state.bridge = bridge  # the Twilio webhook route reads it there (routes_webhook)
    app.dependency_overrides[get_store] = lambda: store
    return app


def client_for(app: FastAPI, key: str | None = API_KEY) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, ADMIN_KEY) as http:
        yield http
