"""OpenAPI helpers: every error status and code documented with an example.

Each route states in its decorator what is particular to it: its success examples
(:func:`answers`), its request body example (:func:`body_example`) and the errors it can
answer (:func:`error_responses`). :func:`complete_openapi` then applies what holds for every
route alike: one ``Error`` schema on every error answer, our 422 instead of FastAPI's, 503
while Kafka is not connected on every write, 413 wherever a body is read, and the bearer key
wherever a 401 can answer. ``tests/ingress/test_schemathesis.py`` checks the result against
the app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ingress import examples
from schemas.errors import (
    SmslaneError,
    Unauthorized,
)

ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
#: The ``Authorization: Bearer <key>`` of every route that can answer 401.
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An SMS API key on /v1/sms*, an admin key on /v1/admin/* (an admin key "
    "works on /v1/sms* too).",
}


@dataclass(frozen=True)
class ErrorDoc:
    """One documented error answer: its status, its code and an example ``detail``."""

    status: int
    code: str
    detail: str
    #: The response's description (the first error documented for a status sets it).
    description: str = "Error"


_GENERIC = {
    doc.status: doc
    for doc in (
        ErrorDoc(401, "unauthorized", Unauthorized.default_detail),
        ErrorDoc(403, "forbidden", "This API key may not use this route."),
        ErrorDoc(404, "not_found", "Nothing exists at this address."),
        ErrorDoc(
            422,
            "invalid_request",
            "Invalid request: limit: Input should be less than or equal to 100.",
        ),
        ErrorDoc(
            503, "service_unavailable", "Kafka did not acknowledge the write in time; retry later."
        ),
    )
}
KAFKA_DOWN = ErrorDoc(503, "service_unavailable", "Kafka is not connected yet; retry in a moment.")
TOO_LARGE = ErrorDoc(413, "payload_too_large", "The request body is larger than 65536 bytes.")
INVALID_SIGNATURE = ErrorDoc(
    403,
    "invalid_signature",
    "Request signature validation failed.",
    description="Request signature validation failed",
)
NOT_READY = ErrorDoc(503, "not_ready", "Not ready: Kafka does not answer.")

#: The webhook's request as Twilio sends it: a signed form (the handler reads it raw).
TWILIO_CALLBACK_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "example": examples.CALLBACK_FORM,
            }
        },
    },
    "parameters": [
        {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Twilio's signature of the request, checked with the auth "
            "token of the subaccount named by AccountSid.",
        }
    ],
}


def _error_doc(error: type[SmslaneError] | int | ErrorDoc) -> ErrorDoc:
    if isinstance(error, ErrorDoc):
        return error
    if isinstance(error, int):
        return _GENERIC[error]
    return ErrorDoc(error.status_code, error.code, error.default_detail)


def _add_error(responses: dict[Any, Any], key: int | str, error: ErrorDoc) -> None:
    entry = responses.setdefault(key, {"description": error.description})
    content = entry.setdefault("content", {}).setdefault("application/json", {})
    content["schema"] = ERROR_SCHEMA
    content.setdefault("examples", {})[error.code] = {
        "value": {"detail": error.detail, "code": error.code}
    }


def error_responses(
    *errors: type[SmslaneError] | int | ErrorDoc, auth: bool = True
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these errors (classes, generic status codes or
    :class:`ErrorDoc`), 401 included unless ``auth`` is False."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in (*errors, *((401,) if auth else ())):
        doc = _error_doc(error)
        _add_error(out, doc.status, doc)
    return out


#: FastAPI drops every ``None`` from the document it generates, examples included
#: (fastapi/fastapi#5559: a record's ``"delivered_at": null`` would vanish), so a route's
#: example travels as its JSON text under this key and :func:`complete_openapi` parses it.
_EXAMPLE_JSON = "x-smslane-example-json"


def answers(example: Any, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: ``example`` as the JSON answer of each status."""
    wrapped = {_EXAMPLE_JSON: json.dumps(example)}
    return {status: {"content": {"application/json": dict(wrapped)}} for status in statuses}


def body_example(example: Any) -> dict[str, Any]:
    """A route's ``openapi_extra``: ``example`` as its JSON request body."""
    return {"requestBody": {"content": {"application/json": {_EXAMPLE_JSON: json.dumps(example)}}}}


# -- completing the generated document ---------------------------------------------------


def _can_fail_validation(op: dict[str, Any]) -> bool:
    """Whether FastAPI can reject the request's shape (a body, or a typed query value)."""
    if "requestBody" in op:
        return True
    return any(
        p.get("in") == "query" or p.get("schema", {}).get("type", "string") != "string"
        for p in op.get("parameters", [])
    )


def _complete_operation(method: str, path: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    generated_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
    if "HTTPValidationError" in str(generated_422.get("schema", "")):
        del responses["422"]
        if _can_fail_validation(op):
            _add_error(responses, "422", _GENERIC[422])
    if path.startswith("/v1/") and method in ("post", "put", "patch", "delete"):
        _add_error(responses, "503", KAFKA_DOWN)
    if "requestBody" in op:
        _add_error(responses, "413", TOO_LARGE)
    if "401" in responses:
        op.setdefault("security", [{"bearer": []}])
    for status_text, response in responses.items():
        if status_text.isdigit() and int(status_text) >= 400:
            content = response.setdefault("content", {}).setdefault("application/json", {})
            content["schema"] = ERROR_SCHEMA
        elif "application/json" in response.get("content", {}):
            response["content"]["application/json"].setdefault("schema", {"type": "object"})


def _restore_examples(op: dict[str, Any]) -> None:
    """Parse back the examples :func:`answers` and :func:`body_example` wrapped."""
    contents = [r.get("content", {}) for r in op.get("responses", {}).values()]
    contents.append(op.get("requestBody", {}).get("content", {}))
    for content in contents:
        for media in content.values():
            if _EXAMPLE_JSON in media:
                media["example"] = json.loads(media.pop(_EXAMPLE_JSON))


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every error answer the ``{"detail", "code"}`` schema, every route the errors all
    routes of its kind can answer, and every example its ``null`` values back.

    FastAPI's generic 422 (``HTTPValidationError``) becomes ours: the error handler answers
    ``invalid_request`` with a sentence, never the list of pydantic errors.
    """
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
    components = schema["components"].setdefault("schemas", {})
    components["Error"] = {
        "title": "Error",
        "type": "object",
        "properties": {
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "code": {"type": "string", "description": "Stable machine-readable code."},
        },
        "required": ["detail", "code"],
    }
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            _restore_examples(op)
            _complete_operation(method, path, op)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (and so in ``/docs``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
