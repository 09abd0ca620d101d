"""What every Twilio webhook of smslane checks first: a form, signed by a known subaccount.

:func:`verified_form` answers the form, or the response to send instead: 403 for a body that
is not a UTF-8 form or a signature that does not check out (``ingress.twilio_signature``),
503 while the configuration (hence the auth tokens) is not read yet, so that Twilio retries.
"""

from __future__ import annotations

from fastapi import Request, Response

from ingress.bridge import KafkaBridge
from ingress.errors import error_response
from ingress.twilio_signature import FormParams, parse_form, verify
from schemas.settings import Settings


def _refused() -> Response:
    return error_response(403, "Request signature validation failed.", "invalid_signature")


async def verified_form(
    request: Request, settings: Settings, bridge: KafkaBridge
) -> FormParams | Response:
    """The webhook's form if its signature is valid; otherwise the answer (403 or 503)."""
    params = parse_form(await request.body())
    if params is None:
        return _refused()
    if not bridge.connected:
        # Without the configuration we cannot tell a bad signature from an unknown
        # account; 503 makes Twilio retry instead of dropping the webhook.
        return error_response(
            503, "Not ready to receive webhooks yet; retry shortly.", "service_unavailable"
        )
    signature = request.headers.get("x-twilio-signature", "")
    path, query = request.url.path, request.url.query
    if verify(settings, bridge.config, path, query, params, signature) is None:
        return _refused()
    return params
