"""OpenAPI helpers: every error status and code documented with an example."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from schemas.errors import (
    A2pCampaignNotVerified,
    BrandSuspended,
    DestinationOptedOut,
    GatewayTimeout,
    IdempotencyKeyReused,
    InvalidDestination,
    InvalidRequest,
    NoSenderNumbers,
    ProviderUnavailable,
    RegionNotPermitted,
    SmslaneError,
    UseCaseInactive,
    UseCaseNotFound,
)

SEND_ERRORS: tuple[type[SmslaneError], ...] = (
    InvalidRequest,
    UseCaseNotFound,
    UseCaseInactive,
    NoSenderNumbers,
    A2pCampaignNotVerified,
    InvalidDestination,
    DestinationOptedOut,
    RegionNotPermitted,
    BrandSuspended,
    IdempotencyKeyReused,
    ProviderUnavailable,
)

_GENERIC = {
    401: ("unauthorized", "A valid API key is required: send Authorization: Bearer <key>."),
    403: ("forbidden", "This API key may not use this route."),
    404: ("not_found", "Nothing exists at this address."),
    422: ("invalid_request", "Invalid request: limit: Input should be less than or equal to 100."),
    503: ("service_unavailable", "Kafka did not acknowledge the write in time; retry later."),
}


def error_responses(*errors: type[SmslaneError] | int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these errors (classes or bare status codes)."""
    out: dict[int | str, dict[str, Any]] = {}
    items: list[tuple[int, str, str]] = []
    for error in (*errors, 401):
        if isinstance(error, int):
            code, detail = _GENERIC[error]
            items.append((error, code, detail))
        else:
            items.append((error.status_code, error.code, error.default_detail))
    for status, code, detail in items:
        entry = out.setdefault(
            status,
            {
                "description": "Error",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "detail": {"type": "string"},
                                "code": {"type": "string"},
                            },
                            "required": ["detail", "code"],
                        },
                        "examples": {},
                    }
                },
            },
        )
        entry["content"]["application/json"]["examples"][code] = {
            "value": {"detail": detail, "code": code}
        }
    return out


# -- completing the generated document ---------------------------------------------------

_SID = "SM" + "9f2c4b1a" * 4
_RECORD = {
    "id": "5b0c9c1e-2f3a-4d5e-8f70-1a2b3c4d5e6f",
    "use_case_id": "0b6f3c1e-7d2a-4f5e-9c1b-2a3d4e5f6a7b",
    "message_sid": _SID,
    "from_number": None,
    "to_number": "+14155550123",
    "body": "Your code is 123456",
    "num_segments": None,
    "status": "pending",
    "handed_off_at": None,
    "delivered_at": None,
    "errored_at": None,
    "error_code": None,
    "created_at": "2026-11-26T10:00:00.812Z",
    "updated_at": "2026-11-26T10:00:00.812Z",
}
_DELIVERED = {
    **_RECORD,
    "from_number": "+14155550100",
    "num_segments": 1,
    "status": "delivered",
    "handed_off_at": "2026-11-26T10:00:01.204Z",
    "delivered_at": "2026-11-26T10:00:03.911Z",
    "updated_at": "2026-11-26T10:00:03.911Z",
}
_SUBACCOUNT_BODY = {"auth_token": "your_auth_token", "friendly_name": "Acme production"}
_STAMPS = {"created_at": "2026-11-26T09:00:00Z", "updated_at": "2026-11-26T09:00:00Z"}
_SUBACCOUNT = {"account_sid": "AC" + "0a1b2c3d" * 4, "friendly_name": "Acme production", **_STAMPS}
_BRAND_BODY = {"name": "Acme", "status": "verified"}
_BRAND = {"brand_id": "acme", **_BRAND_BODY, **_STAMPS}
_USE_CASE_BODY = {
    "name": "Order updates",
    "account_sid": _SUBACCOUNT["account_sid"],
    "messaging_service_sid": "MG" + "4e5f6a7b" * 4,
    "brand_id": "acme",
    "a2p_campaign_status": "verified",
    "permitted_regions": ["US", "CA"],
    "active": True,
}
_USE_CASE = {"id": _RECORD["use_case_id"], **_USE_CASE_BODY, **_STAMPS}
_POOL_ENTRY = {
    "phone_number": "+14155550100",
    "number_type": "long_code",
    "created_at": _STAMPS["created_at"],
}
_NUMBER = {"use_case_id": _RECORD["use_case_id"], **_POOL_ENTRY}
_OPT_OUT = {
    "use_case_id": _RECORD["use_case_id"],
    "phone_number": "+14155550123",
    "created_at": _STAMPS["created_at"],
}
_CALLBACK_FORM = {
    "AccountSid": _SUBACCOUNT["account_sid"],
    "MessageSid": _SID,
    "MessageStatus": "delivered",
    "From": "+14155550100",
    "To": "+14155550123",
    "NumSegments": "1",
}

#: Request body examples by (method, path template).
REQUEST_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/sms/"): {
        "use_case_id": _RECORD["use_case_id"],
        "to_phone_number": _RECORD["to_number"],
        "message": _RECORD["body"],
    },
    ("put", "/v1/admin/twilio-subaccounts/{account_sid}"): _SUBACCOUNT_BODY,
    ("put", "/v1/admin/brands/{brand_id}"): _BRAND_BODY,
    ("post", "/v1/admin/sms-use-cases"): _USE_CASE_BODY,
    ("patch", "/v1/admin/sms-use-cases/{use_case_id}"): {"active": False},
    ("put", "/v1/admin/sms-use-cases/{use_case_id}/phone-numbers/{phone_number}"): {
        "number_type": "long_code"
    },
}
#: Success answers by (method, path template): {status: example body}.
RESPONSE_EXAMPLES: dict[tuple[str, str], dict[int, Any]] = {
    ("post", "/v1/sms/"): {201: _RECORD},
    ("get", "/v1/sms/"): {200: {"items": [_DELIVERED], "next_cursor": "eyJ0IjoiMjAyNi0xMS0yNiJ9"}},
    ("get", "/v1/sms/{sms_id}"): {200: _DELIVERED},
    ("put", "/v1/admin/twilio-subaccounts/{account_sid}"): {200: _SUBACCOUNT, 201: _SUBACCOUNT},
    ("put", "/v1/admin/brands/{brand_id}"): {200: _BRAND, 201: _BRAND},
    ("post", "/v1/admin/sms-use-cases"): {201: _USE_CASE},
    ("get", "/v1/admin/sms-use-cases/{use_case_id}"): {
        200: {**_USE_CASE, "phone_numbers": [_POOL_ENTRY]}
    },
    ("patch", "/v1/admin/sms-use-cases/{use_case_id}"): {200: {**_USE_CASE, "active": False}},
    ("put", "/v1/admin/sms-use-cases/{use_case_id}/phone-numbers/{phone_number}"): {200: _NUMBER},
    ("put", "/v1/admin/sms-use-cases/{use_case_id}/opt-outs/{phone_number}"): {200: _OPT_OUT},
    ("get", "/healthz"): {200: {"status": "ok"}},
    ("get", "/readyz"): {200: {"status": "ready"}},
}
#: Errors every route of a kind can answer, beyond those its decorator lists.
_KAFKA_DOWN = (503, "service_unavailable", "Kafka is not connected yet; retry in a moment.")
_TOO_LARGE = (413, "payload_too_large", "The request body is larger than 65536 bytes.")
_EXTRA_ERRORS: dict[tuple[str, str], tuple[tuple[int, str, str], ...]] = {
    ("post", "/v1/sms/"): (
        _KAFKA_DOWN,
        (504, "worker_timeout", GatewayTimeout.default_detail),
    ),
    ("post", "/v1/webhook/twilio/sms-status"): (
        (403, "invalid_signature", "Request signature validation failed."),
    ),
    ("get", "/readyz"): (
        (503, "not_ready", "Not ready: Kafka at 127.0.0.1:9092 does not answer."),
    ),
}


def _error_entry(responses: dict[str, Any], status: int, code: str, detail: str) -> None:
    entry = responses.setdefault(str(status), {"description": "Error"})
    content = entry.setdefault("content", {}).setdefault("application/json", {})
    content["schema"] = {"$ref": "#/components/schemas/Error"}
    content.setdefault("examples", {})[code] = {"value": {"detail": detail, "code": code}}


def _can_fail_validation(op: dict[str, Any]) -> bool:
    """Whether FastAPI can reject the request's shape (a body, or a typed query value)."""
    if "requestBody" in op:
        return True
    return any(
        p.get("in") == "query" or p.get("schema", {}).get("type", "string") != "string"
        for p in op.get("parameters", [])
    )


def _complete_operation(method: str, path: str, op: dict[str, Any]) -> None:
    key = (method, path)
    responses: dict[str, Any] = op.setdefault("responses", {})
    generated_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
    if "HTTPValidationError" in str(generated_422.get("schema", "")):
        del responses["422"]
        if _can_fail_validation(op):
            _error_entry(responses, 422, *_GENERIC[422])
    takes_body = "requestBody" in op or path == "/v1/webhook/twilio/sms-status"
    writes_kafka = path.startswith("/v1/") and method in ("post", "put", "patch", "delete")
    extra = list(_EXTRA_ERRORS.get(key, ()))
    if writes_kafka:
        extra.append(_KAFKA_DOWN)
    if takes_body:
        extra.append(_TOO_LARGE)
    for status, code, detail in extra:
        _error_entry(responses, status, code, detail)
    for status_text, response in responses.items():
        if status_text.isdigit() and int(status_text) >= 400:
            content = response.setdefault("content", {}).setdefault("application/json", {})
            content["schema"] = {"$ref": "#/components/schemas/Error"}
    for status, example in RESPONSE_EXAMPLES.get(key, {}).items():
        entry = responses.setdefault(
            str(status), {"description": "Created" if status == 201 else "OK"}
        )
        content = entry.setdefault("content", {}).setdefault("application/json", {})
        content.setdefault("schema", {"type": "object"})
        content["example"] = example
    body_example = REQUEST_EXAMPLES.get(key)
    if body_example is not None and "requestBody" in op:
        op["requestBody"]["content"]["application/json"]["example"] = body_example


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every operation examples and the ``{"detail", "code"}`` schema on every error.

    FastAPI's generic 422 (``HTTPValidationError``) becomes ours: the error handler answers
    ``invalid_request`` with a sentence, never the list of pydantic errors.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
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
            _complete_operation(method, path, op)
    webhook = schema.get("paths", {}).get("/v1/webhook/twilio/sms-status", {}).get("post")
    if webhook is not None:
        webhook["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                    "example": _CALLBACK_FORM,
                }
            },
        }
        webhook["parameters"] = [
            {
                "name": "X-Twilio-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "Twilio's signature of the request, checked with the auth "
                "token of the subaccount named by AccountSid.",
            }
        ]
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
