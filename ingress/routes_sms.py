"""``/v1/sms/``: send one SMS, read one, list them."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ingress import examples
from ingress.auth import Caller
from ingress.deps import ApiKeyDep, BridgeDep, RecentDep, StoreDep
from ingress.docs import answers, body_example, error_responses
from ingress.params import UNKNOWN_CURSOR, CursorQuery, PhoneQuery, Timestamp
from ingress.recent import RecentRecords
from schemas.errors import (
    ERRORS_BY_CODE,
    SEND_ERRORS,
    GatewayTimeout,
    InvalidRequest,
    InvalidSendAt,
    NotCancelable,
    NotFound,
    ProviderUnavailable,
    ServiceUnavailable,
    UseCaseNotFound,
)
from schemas.events import CancelRequest, SendReply, SendRequest
from schemas.records import SmsRecord, SmsStatus
from schemas.scheduling import parse_send_at, window_problem
from store import InvalidCursor, Store

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/sms", tags=["SMS"])
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1f7e55-3a6e-4c89-9f0a-5b1d6f2c9a10")
E164 = r"^\+[1-9][0-9]{1,14}$"


def _send_at(value: Any) -> Any:
    """``send_at`` as text in RFC 3339 with an offset, read as UTC (nothing else is a time)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("send_at must be an RFC 3339 date-time string")
    return parse_send_at(value)


class SendSmsBody(BaseModel):
    """The body of ``POST /v1/sms/``; unknown fields are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "use_case_id": "0b6f3c1e-7d2a-4f5e-9c1b-2a3d4e5f6a7b",
                    "to_phone_number": "+14155550123",
                    "message": "Your code is 123456",
                }
            ]
        },
    )

    use_case_id: uuid.UUID = Field(description="ID of the SMS use case to send through")
    to_phone_number: str = Field(pattern=E164, description="Destination in E.164 format")
    message: str = Field(min_length=1, max_length=1600, description="Message body")
    send_at: Annotated[datetime | None, BeforeValidator(_send_at)] = Field(
        default=None,
        description="Send at this time (RFC 3339 with a UTC offset), between 15 minutes and "
        "35 days from now; answered in UTC",
    )
    validity_period: int | None = Field(
        default=None, ge=1, le=36000, strict=True,
        description="Seconds Twilio may keep trying; a message still queued after it fails",
    )  # fmt: skip
    client_reference: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="Your own reference, returned as given and filterable in the list",
    )  # fmt: skip


class SmsList(BaseModel):
    items: list[SmsRecord]
    next_cursor: str | None


def body_hash(body: SendSmsBody) -> str:
    """What the ``Idempotency-Key`` comparison compares: the fields, ``send_at`` as an instant.

    A body without the scheduling fields hashes as it always did, so replays of requests
    made before they existed still compare equal."""
    canonical = f"{body.use_case_id}\n{body.to_phone_number}\n{body.message}"
    extra = (body.send_at, body.validity_period, body.client_reference)
    if extra != (None, None, None):
        send_at = body.send_at.isoformat() if body.send_at is not None else ""
        canonical += f"\n{send_at}\n{body.validity_period or ''}\n{body.client_reference or ''}"
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "/",
    status_code=201,
    response_model=SmsRecord,
    summary="Send SMS",
    responses={
        **answers(examples.RECORD, 201),
        **error_responses(*SEND_ERRORS, GatewayTimeout),
    },
    openapi_extra=body_example(examples.SEND_BODY),
)
async def send_sms(
    body: SendSmsBody,
    caller: ApiKeyDep,
    bridge: BridgeDep,
    recent: RecentDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    """Send one SMS through the use case's Messaging Service; answers the new record."""
    received_at = datetime.now(UTC)
    if body.send_at is not None and (problem := window_problem(body.send_at, received_at)):
        raise InvalidSendAt(problem)
    if not caller.may_use(body.use_case_id):
        raise UseCaseNotFound()  # the worker's answer for an unknown use case, word for word
    if idempotency_key:
        request_id = uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{caller.key_id}:{idempotency_key}")
    else:
        request_id = uuid.uuid4()
    send = SendRequest(
        request_id=request_id,
        idempotency_key=idempotency_key,
        body_hash=body_hash(body),
        use_case_id=body.use_case_id,
        to_phone_number=body.to_phone_number,
        message=body.message,
        received_at=received_at,
        reply_topic=bridge.replies_topic,
        correlation_id=bridge.new_correlation_id(),
        config_offset=bridge.config_offset,
        send_at=body.send_at,
        validity_period=body.validity_period,
        client_reference=body.client_reference,
    )
    reply = await bridge.request_send(send)
    record = _answered(reply, recent)
    return JSONResponse(record.model_dump(mode="json"), status_code=reply.status_code)


def _answered(reply: SendReply, recent: RecentRecords) -> SmsRecord:
    """The worker's record, kept for read-your-writes (served from here until the sink has
    written it, a few ms); its error raised."""
    if reply.error is not None:
        error_type = ERRORS_BY_CODE.get(reply.error.code, ServiceUnavailable)
        raise error_type(reply.error.detail, retry_after=reply.retry_after)
    assert reply.record is not None
    recent.put(reply.record)
    return reply.record


@router.get(
    "/{sms_id}",
    response_model=SmsRecord,
    summary="Get one SMS",
    responses={**answers(examples.DELIVERED, 200), **error_responses(404)},
)
async def get_sms(sms_id: str, caller: ApiKeyDep, store: StoreDep, recent: RecentDep) -> Any:
    """The record with this id, or 404 (also when it is outside the key's use cases)."""
    record = await _visible_record(sms_id, caller, store, recent)
    return record.model_dump(mode="json")


async def _visible_record(
    sms_id: str, caller: Caller, store: Store, recent: RecentRecords
) -> SmsRecord:
    """The newest of the store's record and the one this ingress just answered, or 404
    (also when it is outside the key's use cases)."""
    try:
        record_id = uuid.UUID(sms_id)
    except ValueError:
        raise NotFound(f"No SMS with id {sms_id!r}.") from None
    stored, answered = await store.get_record(record_id), recent.get(record_id)
    candidates = [r for r in (stored, answered) if r is not None]
    if not candidates:
        raise NotFound(f"No SMS with id {sms_id}.")
    record = max(candidates, key=lambda r: (r.status.rank, r.updated_at))
    if not caller.may_use(record.use_case_id):
        raise NotFound(f"No SMS with id {sms_id}.")
    return record


@router.post(
    "/{sms_id}/cancel",
    response_model=SmsRecord,
    summary="Cancel a scheduled SMS",
    responses={
        **answers(examples.CANCELED, 200),
        **error_responses(404, NotCancelable, ProviderUnavailable, GatewayTimeout),
    },
)
async def cancel_sms(
    sms_id: str, caller: ApiKeyDep, store: StoreDep, recent: RecentDep, bridge: BridgeDep
) -> Any:
    """Cancel a message sent with ``send_at`` that Twilio has not sent yet: 200 with the
    record ``canceled``; again 200 for a message already canceled; 409 once it is no longer
    scheduled; 503 (status unchanged) when Twilio cannot be reached."""
    record = await _visible_record(sms_id, caller, store, recent)
    if record.status is SmsStatus.CANCELED:
        return record.model_dump(mode="json")
    if record.send_at is None:
        raise NotCancelable("Only a message sent with send_at can be canceled.")
    if record.status is not SmsStatus.SCHEDULED:
        raise NotCancelable(f"The message is no longer scheduled: it is {record.status.value}.")
    cancel = CancelRequest(
        record=record, received_at=datetime.now(UTC), reply_topic=bridge.replies_topic,
        correlation_id=bridge.new_correlation_id(),
    )  # fmt: skip
    reply = await bridge.request_cancel(cancel)
    return _answered(reply, recent).model_dump(mode="json")


@router.get(
    "/",
    response_model=SmsList,
    summary="List SMS",
    responses={**answers(examples.PAGE, 200), **error_responses(422)},
)
async def list_sms(
    caller: ApiKeyDep,
    store: StoreDep,
    use_case_id: uuid.UUID | None = None,
    status: SmsStatus | None = None,
    to_number: PhoneQuery = None,
    client_reference: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorQuery = None,
) -> Any:
    """Newest first; follow ``next_cursor`` for the next page. A key with use cases lists
    only theirs (a ``use_case_id`` outside them lists nothing)."""
    try:
        items, next_cursor = await store.list_records(
            use_case_id=use_case_id,
            use_case_ids=caller.use_case_ids,
            status=status,
            to_number=to_number,
            client_reference=client_reference,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor:
        raise InvalidRequest(UNKNOWN_CURSOR) from None
    return {"items": [r.model_dump(mode="json") for r in items], "next_cursor": next_cursor}
