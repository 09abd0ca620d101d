"""The HTTP API: built by :func:`create_app`, served by :func:`run_ingress`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feeds.topics import ensure_topics
from ingress import (
    metrics,
    routes_admin,
    routes_inbound,
    routes_keys,
    routes_ops,
    routes_sms,
    routes_webhook,
    routes_webhooks,
)
from ingress.bridge import KafkaBridge
from ingress.docs import install_openapi
from ingress.errors import error_response, register_errors
from ingress.recent import RecentRecords
from schemas.settings import Settings
from store import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """Answer 413 to a body over ``limit`` bytes, declared or streamed (chunked).

    The body (at most ``limit`` bytes, so cheap) is read before the app runs and handed to
    it in one message; that way an oversized chunked body is refused with 413 too.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = error_response(
            413, f"The request body is larger than {self.limit} bytes.", "payload_too_large"
        )
        await answer(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = self._too_large
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that first returns ``messages``, then defers to the real one."""

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store, connect to Kafka in the background (routes answer 503 meanwhile),
    and close both at the end."""
    settings: Settings = app.state.settings
    bridge: KafkaBridge = app.state.bridge
    app.state.store = store = await Store.open(settings.database_url)
    connecting = asyncio.create_task(_connect(settings, bridge), name="kafka-connect")
    try:
        yield
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await bridge.stop()
        await store.close()


async def _connect(settings: Settings, bridge: KafkaBridge) -> None:
    """Create the catalog's topics if the broker answers (best effort), then connect."""
    try:
        await ensure_topics(settings, timeout_s=settings.kafka_timeout_seconds)
    except Exception as exc:  # the worker stops on these; the ingress answers 503 meanwhile
        log.warning("ingress: could not check the topics (%s); connecting anyway", exc)
    await bridge.connect()


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app; Kafka and the store are connected by its :func:`lifespan`.

    What the routes use (``ingress.deps``) is on ``app.state``: ``settings``, ``bridge``,
    ``recent``, and ``store`` once the lifespan has opened it.
    """
    app = FastAPI(
        title="smslane",
        version="0.1.0",
        description="Send SMS through Twilio use cases and track every message's delivery "
        "lifecycle. Authenticate with `Authorization: Bearer <key>`; errors answer "
        '`{"detail": "...", "code": "..."}`.',
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.bridge = KafkaBridge(settings)
    app.state.recent = RecentRecords()
    register_errors(app)
    # routes_inbound first: its /v1/sms/inbound/ must not be read as /v1/sms/{sms_id}.
    for routes in (
        routes_inbound,
        routes_sms,
        routes_webhook,
        routes_admin,
        routes_keys,
        routes_webhooks,
        routes_ops,
    ):
        app.include_router(routes.router)
    app.add_middleware(BodyLimit)
    metrics.install(app)
    install_openapi(app)
    return app


def run_ingress(settings: Settings) -> None:
    """Serve the API with uvicorn on SMSLANE_HTTP_HOST:SMSLANE_HTTP_PORT."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        log_config=None,  # our handler (smslane.logs) formats uvicorn's events too
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )
