"""``POST /v1/webhook/twilio/sms-status``: check the signature, store the callback, answer.

Nothing else happens here: the lifecycle agent does the rest from ``sms.callbacks``.

The busiest route (two callbacks per message), so it takes only the request and reads the
settings and the bridge off ``app.state`` (what ``ingress.deps`` would answer): FastAPI's
dependency solving for ``SettingsDep`` and ``BridgeDep`` cost more per request than the
rest of the route's Python but the signature check. A test's stand-in bridge goes on
``app.state.bridge`` for this route (``dependency_overrides`` does not reach it).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from ingress.bridge import KafkaBridge
from ingress.docs import INVALID_SIGNATURE, TWILIO_CALLBACK_REQUEST, error_responses
from ingress.webhook_auth import verified_form
from schemas.events import RawCallback
from schemas.settings import Settings

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
async def twilio_status_callback(request: Request) -> Response:
    """Receive a delivery status update from Twilio (form-encoded, signed)."""
    received_at = datetime.now(UTC)
    state = request.app.state
    settings: Settings = state.settings
    bridge: KafkaBridge = state.bridge
    params = await verified_form(request, settings, bridge)
    if isinstance(params, Response):
        return params
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not (params.get("MessageStatus") or params.get("SmsStatus")):
        log.warning("dropping signed callback without MessageSid/MessageStatus: %s", sorted(params))
        return Response(status_code=204)
    callback = RawCallback.from_form(uuid.uuid4(), received_at, params.multi_items())
    await bridge.publish_callback(sid, callback)
    return Response(status_code=204)
