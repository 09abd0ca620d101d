"""One place that turns errors into the contract's ``{"detail", "code"}`` answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.errors import SmslaneError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, detail: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def describe_validation(errors: list[Any]) -> str:
    """One sentence naming each invalid field, e.g. ``body.message: String should have...``."""
    parts = []
    if any(e.get("loc") == ("body",) and e.get("type") == "model_attributes_type" for e in errors):
        return (
            "Invalid request: the body must be a JSON object (send Content-Type: application/json)."
        )
    for error in errors[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


def register_errors(app: FastAPI) -> None:
    """Install the handlers; every error answer then has ``detail`` and ``code``."""

    @app.exception_handler(SmslaneError)
    async def on_domain_error(request: Request, exc: SmslaneError) -> JSONResponse:
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(exc.status_code, exc.detail, exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, describe_validation(list(exc.errors())), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}."
        return error_response(exc.status_code, detail, code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Something went wrong on our side.", "internal_error")
