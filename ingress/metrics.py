"""Prometheus metrics of the ingress, served at ``GET /metrics`` (text exposition format).

Requests are counted by route *template* (``/v1/sms/{sms_id}``, never the raw path, so the
label set stays bounded) and status; a request no route matched counts as ``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SEND_ROUTE = ("POST", "/v1/sms/")
UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter(
    "smslane_http_requests",
    "HTTP requests answered by the ingress, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "smslane_http_request_duration_seconds",
    "Time from receiving an HTTP request to finishing its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SEND_DURATION = Histogram(
    "smslane_sms_send_duration_seconds",
    "Latency of POST /v1/sms/ (checks, Twilio call and the worker's reply), by status code.",
    ["status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0),
)


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by its route template.

    The labelled children are kept per (method, route, status): ``labels()`` validates and
    looks its labels up under a lock on every call, twice per request otherwise. The cache
    holds what the metrics themselves hold, one entry per label set seen.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], Callable[[float], None]] = {}

    def _observer(self, method: str, route: str, status: int) -> Callable[[float], None]:
        """What records one request of this label set: count it, time it."""
        key = (method, route, status)
        observe = self._children.get(key)
        if observe is None:
            count = HTTP_REQUESTS.labels(method, route, str(status))
            duration = HTTP_DURATION.labels(method, route)
            send = SEND_DURATION.labels(str(status)) if (method, route) == SEND_ROUTE else None

            def observe(elapsed: float) -> None:
                count.inc()
                duration.observe(elapsed)
                if send is not None:
                    send.observe(elapsed)

            self._children[key] = observe
        return observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self._observer(scope["method"], route, status)(elapsed)


def install(app: FastAPI) -> None:
    """Add the middleware (outermost, so it also sees 413s) and ``GET /metrics``."""

    @app.get(
        "/metrics",
        tags=["Operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {
                    "text/plain": {
                        "example": "# HELP smslane_http_requests_total HTTP requests ...\n"
                        "# TYPE smslane_http_requests_total counter\n"
                        'smslane_http_requests_total{method="POST",route="/v1/sms/",'
                        'status="201"} 42.0\n'
                    }
                },
            }
        },
    )
    async def metrics() -> Response:
        """Counters and histograms of this process, for Prometheus to scrape."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestMetrics)
