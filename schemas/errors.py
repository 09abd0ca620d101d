"""Domain errors: each carries the HTTP status and the contract's ``code``.

``streams/`` and ``sinks/`` raise or return these; only the ingress turns them into HTTP
answers (one handler renders ``{"detail", "code"}``).
"""

from __future__ import annotations

from typing import ClassVar


class SmslaneError(Exception):
    """Base of every error a client can see."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_detail: ClassVar[str] = "Something went wrong on our side."

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        self.detail = detail or self.default_detail
        #: Seconds for the ``Retry-After`` header, when a retry can succeed later.
        self.retry_after = retry_after
        super().__init__(self.detail)


class InvalidRequest(SmslaneError):
    status_code = 422
    code = "invalid_request"
    default_detail = "The request body does not match the schema."


class InvalidSendAt(SmslaneError):
    status_code = 422
    code = "invalid_send_at"
    default_detail = (
        "send_at must be an RFC 3339 date-time with a UTC offset, between 15 minutes and "
        "35 days from now."
    )


class NotCancelable(SmslaneError):
    status_code = 409
    code = "not_cancelable"
    default_detail = "The message is no longer scheduled, so it cannot be canceled."


class UseCaseNotFound(SmslaneError):
    status_code = 404
    code = "use_case_not_found"
    default_detail = "No SMS use case with this id exists, or it has been deleted."


class UseCaseInactive(SmslaneError):
    status_code = 404
    code = "use_case_inactive"
    default_detail = "The SMS use case exists but is not active."


class NoSenderNumbers(SmslaneError):
    status_code = 422
    code = "no_sender_numbers"
    default_detail = "No phone number is assigned to the use case's sender pool."


class A2pCampaignNotVerified(SmslaneError):
    status_code = 422
    code = "a2p_campaign_not_verified"
    default_detail = (
        "The sender pool holds a US long code but the use case has no verified A2P 10DLC campaign."
    )


class InvalidDestination(SmslaneError):
    status_code = 422
    code = "invalid_destination"
    default_detail = "The destination is not a valid mobile phone number."


class DestinationOptedOut(SmslaneError):
    status_code = 422
    code = "destination_opted_out"
    default_detail = "The destination number has opted out of messages from this use case."


class RegionNotPermitted(SmslaneError):
    status_code = 422
    code = "region_not_permitted"
    default_detail = "The destination's region is not permitted for this use case."


class BrandSuspended(SmslaneError):
    status_code = 422
    code = "brand_suspended"
    default_detail = "The brand registration behind the use case is suspended."


class IdempotencyKeyReused(SmslaneError):
    status_code = 409
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request body."


class ProviderUnavailable(SmslaneError):
    status_code = 503
    code = "provider_unavailable"
    default_detail = "Twilio did not accept the message after several attempts; retry later."


class Unauthorized(SmslaneError):
    status_code = 401
    code = "unauthorized"
    default_detail = "A valid API key is required: send Authorization: Bearer <key>."


class Forbidden(SmslaneError):
    status_code = 403
    code = "forbidden"
    default_detail = "This API key may not use this route."


class NotFound(SmslaneError):
    status_code = 404
    code = "not_found"
    default_detail = "Nothing exists at this address."


class ServiceUnavailable(SmslaneError):
    status_code = 503
    code = "service_unavailable"
    default_detail = "A backing service (Kafka or the store) is unavailable; retry later."


class GatewayTimeout(SmslaneError):
    status_code = 504
    code = "worker_timeout"
    default_detail = "The send worker did not answer in time; retry with the same Idempotency-Key."


#: The answers of ``POST /v1/sms/`` in the order its checks run (the first failing answers).
SEND_ERRORS: tuple[type[SmslaneError], ...] = (
    InvalidRequest,
    InvalidSendAt,
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

#: Every error by its code, so a reply carried over Kafka maps back to its class.
_OTHER_ERRORS: tuple[type[SmslaneError], ...] = (
    Unauthorized,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    GatewayTimeout,
    NotCancelable,
)
ERRORS_BY_CODE: dict[str, type[SmslaneError]] = {
    cls.code: cls for cls in (*SEND_ERRORS, *_OTHER_ERRORS)
}
