"""``/v1/sms/``: send one SMS, read one, list them."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ingress import examples
from ingress.deps import ApiKeyDep, BridgeDep, RecentDep, StoreDep
from ingress.docs import answers, body_example, error_responses
from ingress.params import UNKNOWN_CURSOR, CursorQuery, PhoneQuery, Timestamp
from schemas.errors import (
    ERRORS_BY_CODE,
    SEND_ERRORS,
    GatewayTimeout,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    UseCaseNotFound,
)
from schemas.events import SendRequest
from schemas.records import SmsRecord, SmsStatus
from store import InvalidCursor

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/sms", tags=["SMS"])
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1f7e55-3a6e-4c89-9f0a-5b1d6f2c9a10")
E164 = r"^\+[1-9][0-9]{1,14}$"


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


class SmsList(BaseModel):
    items: list[SmsRecord]
    next_cursor: str | None


def body_hash(body: SendSmsBody) -> str:
    canonical = f"{body.use_case_id}\n{body.to_phone_number}\n{body.message}"
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
        received_at=datetime.now(UTC),
        reply_topic=bridge.replies_topic,
        correlation_id=bridge.new_correlation_id(),
        config_offset=bridge.config_offset,
    )
    reply = await bridge.request_send(send)
    if reply.error is not None:
        error_type = ERRORS_BY_CODE.get(reply.error.code, ServiceUnavailable)
        raise error_type(reply.error.detail, retry_after=reply.retry_after)
    assert reply.record is not None
    # Read-your-writes: served from here until the sink has written it (a few ms).
    recent.put(reply.record)
    return JSONResponse(reply.record.model_dump(mode="json"), status_code=reply.status_code)


@router.get(
    "/{sms_id}",
    response_model=SmsRecord,
    summary="Get one SMS",
    responses={**answers(examples.DELIVERED, 200), **error_responses(404)},
)
async def get_sms(sms_id: str, caller: ApiKeyDep, store: StoreDep, recent: RecentDep) -> Any:
    """The record with this id, or 404 (also when it is outside the key's use cases)."""
    try:
        record_id = uuid.UUID(sms_id)
    except ValueError:
        raise NotFound(f"No SMS with id {sms_id!r}.") from None
    record = await store.get_record(record_id)
    if record is None:
        record = recent.get(record_id)
    if record is None or not caller.may_use(record.use_case_id):
        raise NotFound(f"No SMS with id {sms_id}.")
    return record.model_dump(mode="json")


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
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor:
        raise InvalidRequest(UNKNOWN_CURSOR) from None
    return {"items": [r.model_dump(mode="json") for r in items], "next_cursor": next_cursor}
