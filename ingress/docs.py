"""OpenAPI helpers: every error status and code documented with an example."""

from __future__ import annotations

from typing import Any

from schemas.errors import (
    A2pCampaignNotVerified,
    BrandSuspended,
    DestinationOptedOut,
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
