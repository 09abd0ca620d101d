"""``POST /v1/webhook/twilio/sms-status``: check the signature, store the callback, answer.

Nothing else happens here: the lifecycle agent does the rest from ``sms.callbacks``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from ingress.deps import BridgeDep, SettingsDep
from ingress.docs import INVALID_SIGNATURE, TWILIO_CALLBACK_REQUEST, error_responses
from ingress.errors import error_response
from ingress.twilio_signature import parse_form, verify
from schemas.events import RawCallback

log = logging.getLogger(__name__)
router = APIRouter(tags=["Webhooks"])


@router.post(
    "/v1/webhook/twilio/sms-status",
    status_code=204,
    summary="Twilio status callback",
    responses={
        204: {"description": "Stored (or silently ignored)"},
        **error_responses(INVALID_SIGNATURE, 503, auth=False),
    },
    openapi_extra=TWILIO_CALLBACK_REQUEST,
)
async def twilio_status_callback(
    request: Request, settings: SettingsDep, bridge: BridgeDep
) -> Response:
    """Receive a delivery status update from Twilio (form-encoded, signed)."""
    received_at = datetime.now(UTC)
    params = parse_form(await request.body())
    if params is None:
        return error_response(403, "Request signature validation failed.", "invalid_signature")
    if not bridge.connected:
        # Without the configuration we cannot tell a bad signature from an unknown
        # account; 503 makes Twilio retry instead of dropping the callback.
        return error_response(
            503, "Not ready to receive callbacks yet; retry shortly.", "service_unavailable"
        )
    signature = request.headers.get("x-twilio-signature", "")
    account = verify(
        settings,
        bridge.config,
        request.url.path,
        request.url.query,
        params,
        signature,
    )
    if account is None:
        return error_response(403, "Request signature validation failed.", "invalid_signature")
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not (params.get("MessageStatus") or params.get("SmsStatus")):
        log.warning("dropping signed callback without MessageSid/MessageStatus: %s", sorted(params))
        return Response(status_code=204)
    callback = RawCallback.from_form(uuid.uuid4(), received_at, params.multi_items())
    await bridge.publish_callback(sid, callback)
    return Response(status_code=204)
