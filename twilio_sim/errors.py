"""Twilio REST errors as Twilio answers them: ``{"code", "message", "more_info", "status"}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TwilioError:
    """One REST error: the HTTP status, the Twilio error code and Twilio's message text."""

    status: int
    code: int
    message: str

    def body(self) -> dict[str, Any]:
        """The JSON body Twilio sends with this error."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


AUTHENTICATE = TwilioError(401, 20003, "Authenticate")


def server_error(status: int) -> TwilioError:
    """A 5xx of Twilio's own (``create_errors``): 20500, an internal error, or 20503."""
    if status == 503:
        return TwilioError(503, 20503, "Service unavailable")
    return TwilioError(status, 20500, "An internal server error has occurred")


def not_found(path: str) -> TwilioError:
    """20404: no resource at ``path``."""
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def missing_to() -> TwilioError:
    """21604: the create call has no ``To``."""
    return TwilioError(400, 21604, "A 'To' phone number is required.")


def missing_body() -> TwilioError:
    """21602: the create call has no ``Body`` (nor ``MediaUrl``/``ContentSid``)."""
    return TwilioError(400, 21602, "Message body is required.")


def missing_from() -> TwilioError:
    """21603: neither ``From`` nor ``MessagingServiceSid``."""
    return TwilioError(400, 21603, "A 'From' phone number is required.")


def body_too_long() -> TwilioError:
    """21617: more than 1600 characters."""
    return TwilioError(
        400, 21617, "The concatenated message body exceeds the 1600 character limit."
    )


def invalid_to(to: str) -> TwilioError:
    """21211: ``To`` is not a phone number."""
    return TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def unknown_service(sid: str) -> TwilioError:
    """21701: no Messaging Service with that SID."""
    return TwilioError(400, 21701, f"The Messaging Service Sid {sid} is invalid.")


def empty_service(sid: str) -> TwilioError:
    """21704: the Messaging Service has no sender."""
    return TwilioError(400, 21704, f"The Messaging Service {sid} contains no phone numbers")


def _cannot_route(to: str) -> TwilioError:
    return TwilioError(
        400, 21612, f"The 'To' phone number: {to}, is not currently reachable via SMS."
    )


def _region_not_enabled(to: str) -> TwilioError:
    return TwilioError(
        400,
        21408,
        f"Permission to send an SMS has not been enabled for the region indicated by the "
        f"'To' number: {to}.",
    )


def unsubscribed(to: str) -> TwilioError:
    """21610: the person texted an opt-out keyword to this sender (or is a magic number)."""
    return TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")


def _not_mobile(to: str) -> TwilioError:
    return TwilioError(400, 21614, f"'To' number {to} is not a valid mobile number")


MAGIC_TO_NUMBERS = {
    "+15005550001": invalid_to,
    "+15005550002": _cannot_route,
    "+15005550003": _region_not_enabled,
    "+15005550004": unsubscribed,
    "+15005550009": _not_mobile,
}
"""Twilio's test ``To`` numbers and the error each one provokes."""

CALLBACK_ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
"""``error_message`` of a failed or undelivered Message resource, by ``error_code``."""
