"""The HTTP API: built by :func:`create_app`, served by :func:`run_ingress`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingress import routes_admin, routes_sms, routes_webhook
from ingress.bridge import KafkaBridge
from ingress.errors import error_response, register_errors
from schemas.errors import ServiceUnavailable
from schemas.settings import Settings
from schemas.topics import ensure_topics

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """Answer 413 to a body over ``limit`` bytes, declared or streamed, before reading it all."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(
            413, f"The request body is larger than {self.limit} bytes.", "payload_too_large"
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app; Kafka and the store are connected by its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from sinks.store import Store

        app.state.store = await Store.open(settings.database_url)
        bridge = app.state.bridge

        async def connect() -> None:
            with contextlib.suppress(Exception):
                await ensure_topics(
                    settings.kafka_bootstrap_servers,
                    settings.topic_prefix,
                    settings.topic_partitions,
                    timeout_s=settings.kafka_timeout_seconds,
                )
            await bridge.connect()

        connecting = asyncio.create_task(connect(), name="kafka-connect")
        try:
            yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await bridge.stop()
            await app.state.store.close()

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
    register_errors(app)
    app.include_router(routes_sms.router)
    app.include_router(routes_webhook.router)
    app.include_router(routes_admin.router)

    @app.get("/healthz", tags=["Operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["Operations"], summary="Kafka and the store answer")
    async def readyz(request: Request) -> Any:
        problems = []
        try:
            if not request.app.state.bridge.connected:
                raise ServiceUnavailable("not connected")
            await request.app.state.bridge.ping()
        except ServiceUnavailable:
            problems.append(f"Kafka at {settings.kafka_bootstrap_servers} does not answer")
        try:
            await request.app.state.store.ping()
        except Exception:
            problems.append("the store does not answer")
        if problems:
            return JSONResponse(
                {"detail": "Not ready: " + "; ".join(problems) + ".", "code": "not_ready"},
                status_code=503,
            )
        return {"status": "ready"}

    app.add_middleware(BodyLimit)
    return app


def run_ingress(settings: Settings) -> None:
    """Serve the API with uvicorn on SMSLANE_HTTP_HOST:SMSLANE_HTTP_PORT."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )
