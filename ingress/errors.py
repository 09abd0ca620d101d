"""One place that turns errors into the contract's ``{"detail", "code"}`` answers."""

from __future__ import annotations

import functools
import logging
import re
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


#: What FastAPI answers 400 with when it cannot read the body: it is not UTF-8 text.
_UNREADABLE_BODY = (
    "Invalid request: the body must be JSON in UTF-8 (send Content-Type: application/json)."
)


@functools.lru_cache(maxsize=256)
def _template(path: str) -> re.Pattern[str]:
    """``/v1/sms/{sms_id}`` as a pattern of the paths it stands for."""
    fixed_parts = re.split(r"\{[^/{}]+\}", path)
    return re.compile("[^/]+".join(re.escape(part) for part in fixed_parts))


def allowed_methods(request: Request, fallback: str) -> str:
    """The ``Allow`` of a 405: every method the document gives this path, not only the first
    route's (Starlette's router stops at the first route whose path matches: ``POST
    /v1/sms/``, although ``GET /v1/sms/`` exists too). ``fallback`` for an undocumented path.
    """
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    path = request.url.path
    methods = {
        method.upper()
        for template, operations in paths.items()
        if _template(template).fullmatch(path)
        for method in operations
    }
    return ", ".join(sorted(methods)) or fallback


def http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The ``{"detail", "code"}`` answer of a framework error (no route, wrong method...).

    FastAPI's 400 (a body it cannot decode as UTF-8) becomes the contract's 422
    ``invalid_request``, like any other body that is not the JSON the route takes.
    """
    if exc.status_code == 400:
        return error_response(422, _UNREADABLE_BODY, "invalid_request")
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.method} {request.url.path}."
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request, headers.get("allow", ""))
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}."
    return error_response(exc.status_code, detail, code, headers)


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


#: Body fields whose problems have a code of their own, when they are the only problems.
_FIELD_CODES = {"send_at": "invalid_send_at"}


def validation_code(errors: list[Any]) -> str:
    """``invalid_request``, or the field's own code when every error is about that field."""
    fields = {tuple(e.get("loc", ()))[1:2] for e in errors}
    if len(fields) == 1:
        (field,) = fields
        if field and isinstance(field[0], str) and field[0] in _FIELD_CODES:
            return _FIELD_CODES[field[0]]
    return "invalid_request"


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
        errors = list(exc.errors())
        return error_response(422, describe_validation(errors), validation_code(errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error_response(request, exc)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Something went wrong on our side.", "internal_error")
