"""Inbound SMS: Twilio's incoming-message webhook, and ``GET /v1/sms/inbound/``.

``POST /v1/webhook/twilio/sms-inbound`` checks the signature like the status webhook
(``ingress.webhook_auth``), then publishes what ``ingress.inbound.plan_inbound`` read from
the form: the opt-out changes of a keyword to the config topic (each applied by this
process's view before the next, so the next send sees them, as after an admin call), then
the message to ``sms.inbound``. Only then does it answer 200 with an empty TwiML
``<Response/>``; a write Kafka does not confirm answers 503 and Twilio retries, which
repeats nothing (opt-outs already in force are not written again; the message keeps its
``id``). This router is included before ``/v1/sms/{sms_id}`` so that it gets
``/v1/sms/inbound/``.
"""

from __future__ import annotations

import copy
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from ingress import examples
from ingress.bridge import KafkaBridge
from ingress.deps import ApiKeyDep, BridgeDep, SettingsDep, StoreDep
from ingress.docs import (
    INVALID_SIGNATURE,
    TWILIO_CALLBACK_REQUEST,
    answers,
    error_responses,
)
from ingress.inbound import InboundPlan, missing_fields, plan_inbound
from ingress.params import UNKNOWN_CURSOR, CursorQuery, PhoneQuery, Timestamp
from ingress.webhook_auth import verified_form
from schemas.errors import InvalidRequest
from schemas.settings import INBOUND_WEBHOOK_PATH
from store import InboundQuery, InvalidCursor

log = logging.getLogger(__name__)
router = APIRouter()

#: The answer that sends no reply (Twilio's Advanced Opt-Out answers keywords itself).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

_INBOUND_REQUEST = copy.deepcopy(TWILIO_CALLBACK_REQUEST)
_INBOUND_REQUEST["requestBody"]["content"]["application/x-www-form-urlencoded"]["example"] = (
    examples.INBOUND_FORM
)


class InboundItem(BaseModel):
    """One inbound SMS as the API lists it."""

    id: uuid.UUID
    use_case_id: uuid.UUID | None
    message_sid: str
    account_sid: str
    messaging_service_sid: str | None
    from_number: str
    to_number: str
    body: str
    received_at: datetime


class InboundList(BaseModel):
    items: list[InboundItem]
    next_cursor: str | None


def _no_reply() -> Response:
    return Response(EMPTY_TWIML, status_code=200, media_type="text/xml")


@router.post(
    INBOUND_WEBHOOK_PATH,
    tags=["Webhooks"],
    summary="Twilio incoming message",
    response_class=Response,
    responses={
        200: {
            "description": "Stored; no reply (empty TwiML)",
            "content": {"text/xml": {"example": EMPTY_TWIML}},
        },
        **error_responses(INVALID_SIGNATURE, 503, auth=False),
    },
    openapi_extra=_INBOUND_REQUEST,
)
async def twilio_incoming_message(
    request: Request, settings: SettingsDep, bridge: BridgeDep
) -> Response:
    """Receive an SMS a person sent to one of the subaccount's numbers (form, signed)."""
    received_at = datetime.now(UTC)
    params = await verified_form(request, settings, bridge)
    if isinstance(params, Response):
        return params
    missing = missing_fields(params)
    if missing:
        log.warning(
            "dropping signed inbound message without %s (fields: %s)",
            ", ".join(missing), sorted(params),
        )  # fmt: skip
        return _no_reply()
    plan = plan_inbound(bridge.config, params, received_at)
    _log_plan(plan)
    await _publish(bridge, plan)
    return _no_reply()


def _log_plan(plan: InboundPlan) -> None:
    message = plan.message
    extra = {"message_sid": message.message_sid, "account_sid": message.account_sid}
    if not plan.use_cases:
        log.warning(
            "inbound message %s to %s: Messaging Service %s of %s is not any use case's; "
            "stored, no opt-out changed",
            message.message_sid, message.to_number, message.messaging_service_sid,
            message.account_sid, extra=extra,
        )  # fmt: skip
    elif plan.changes:
        log.info(
            "inbound keyword %s: %d opt-out(s) recorded, %d removed over %d use case(s)",
            message.keyword, len(plan.changes.put), len(plan.changes.delete),
            len(plan.use_cases), extra=extra,
        )  # fmt: skip


async def _publish(bridge: KafkaBridge, plan: InboundPlan) -> None:
    """Opt-out changes first (each in force here before the next), then the message."""
    for opt_out in plan.changes.put:
        await bridge.publish_config(opt_out)
    for key in plan.changes.delete:
        await bridge.delete_config(key)
    await bridge.publish_inbound(plan.message)


@router.get(
    "/v1/sms/inbound/",
    tags=["SMS"],
    response_model=InboundList,
    summary="List inbound SMS",
    responses={**answers(examples.INBOUND_PAGE, 200), **error_responses(422)},
)
async def list_inbound(
    caller: ApiKeyDep,
    store: StoreDep,
    use_case_id: uuid.UUID | None = None,
    from_number: PhoneQuery = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorQuery = None,
) -> Any:
    """Messages people sent to the use cases' numbers, newest first; follow
    ``next_cursor`` for the next page. ``created_*`` bound the time received."""
    query = InboundQuery(
        use_case_ids=caller.use_case_ids,
        use_case_id=use_case_id,
        from_number=from_number,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )
    try:
        items, next_cursor = await store.list_inbound(query)
    except InvalidCursor:
        raise InvalidRequest(UNKNOWN_CURSOR) from None
    listed = [InboundItem.model_validate(m.model_dump()).model_dump(mode="json") for m in items]
    return {"items": listed, "next_cursor": next_cursor}


# Without the slash, ``/v1/sms/{sms_id}`` would take it (and answer 404 for id "inbound").
router.add_api_route("/v1/sms/inbound", list_inbound, methods=["GET"], include_in_schema=False)
