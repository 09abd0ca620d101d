"""``/v1/admin/*``: subaccounts, brands, use cases, sender numbers and opt-outs.

Each change is written to the compacted config topic and answered once this process's view
has applied it; the send request that follows carries that offset to the worker, so the
change is in force for every send that starts after the call returned.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from feeds.config import ConfigView
from ingress import examples
from ingress.bridge import KafkaBridge
from ingress.deps import BridgeDep, ConfigDep, require_admin_key
from ingress.docs import answers, body_example, error_responses
from ingress.params import Region
from schemas.config import (
    A2pCampaignStatus,
    Brand,
    BrandStatus,
    ConfigEntity,
    NumberType,
    OptOut,
    OptOutSource,
    SealedSubaccount,
    SenderNumber,
    UseCase,
    opt_out_key,
)
from schemas.errors import InvalidRequest, UseCaseNotFound

router = APIRouter(
    prefix="/v1/admin", tags=["Configuration (admin)"], dependencies=[Depends(require_admin_key)]
)
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


class SubaccountBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    auth_token: str = Field(min_length=1, max_length=256)
    friendly_name: str | None = Field(None, max_length=256)


class BrandBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=256)
    status: BrandStatus


class UseCaseBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=256)
    account_sid: str = Field(min_length=1, max_length=64)
    messaging_service_sid: str = Field(min_length=1, max_length=64)
    brand_id: str = Field(min_length=1, max_length=128)
    a2p_campaign_status: A2pCampaignStatus
    permitted_regions: list[Region]
    active: StrictBool


class UseCasePatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, min_length=1, max_length=256)
    account_sid: str | None = Field(None, min_length=1, max_length=64)
    messaging_service_sid: str | None = Field(None, min_length=1, max_length=64)
    brand_id: str | None = Field(None, min_length=1, max_length=128)
    a2p_campaign_status: A2pCampaignStatus | None = None
    permitted_regions: list[Region] | None = None
    active: StrictBool | None = None


class NumberBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    number_type: NumberType


def _now() -> datetime:
    return datetime.now(UTC)


def _public(entity: BaseModel, *exclude: str) -> dict[str, Any]:
    return entity.model_dump(mode="json", exclude={"kind", *exclude})


def _e164(number: str) -> str:
    number = number.strip()
    if not _E164.match(number):
        raise InvalidRequest(f"Invalid request: phone_number: {number!r} is not in E.164 format.")
    return number


def _use_case(config: ConfigView, use_case_id: str) -> UseCase:
    try:
        key = uuid.UUID(use_case_id)
    except ValueError:
        raise UseCaseNotFound(f"No SMS use case with id {use_case_id!r}.") from None
    use_case = config.use_cases.get(key)
    if use_case is None or use_case.deleted:
        raise UseCaseNotFound(f"No SMS use case with id {use_case_id}, or it was deleted.")
    return use_case


def _stamps(existing: Any) -> dict[str, datetime]:
    """``created_at`` kept from the entity being replaced (if any), ``updated_at`` now."""
    now = _now()
    return {"created_at": existing.created_at if existing else now, "updated_at": now}


async def _replace(
    bridge: KafkaBridge, entity: ConfigEntity, existing: object | None, *, hide: str = ""
) -> JSONResponse:
    """Publish a PUT's entity (read-your-writes); 200 when it replaced one, else 201."""
    await bridge.publish_config(entity)
    hidden = (hide,) if hide else ()
    return JSONResponse(_public(entity, *hidden), status_code=200 if existing else 201)


@router.put(
    "/twilio-subaccounts/{account_sid}",
    summary="Create or replace a Twilio subaccount",
    responses={**answers(examples.SUBACCOUNT, 200, 201), **error_responses(403, 422)},
    openapi_extra=body_example(examples.SUBACCOUNT_BODY),
)
async def put_subaccount(
    account_sid: str, body: SubaccountBody, bridge: BridgeDep, config: ConfigDep
) -> JSONResponse:
    """Store the subaccount's auth token, encrypted; it is never returned or logged."""
    existing = config.subaccounts.get(account_sid) or config.undecryptable.get(account_sid)
    entity = SealedSubaccount(
        account_sid=account_sid,
        sealed_auth_token=bridge.secrets.seal(body.auth_token),
        friendly_name=body.friendly_name,
        **_stamps(existing),
    )
    return await _replace(bridge, entity, existing, hide="sealed_auth_token")


@router.put(
    "/brands/{brand_id}",
    summary="Create or replace a brand",
    responses={**answers(examples.BRAND, 200, 201), **error_responses(403, 422)},
    openapi_extra=body_example(examples.BRAND_BODY),
)
async def put_brand(
    brand_id: str, body: BrandBody, bridge: BridgeDep, config: ConfigDep
) -> JSONResponse:
    existing = config.brands.get(brand_id)
    entity = Brand(brand_id=brand_id, name=body.name, status=body.status, **_stamps(existing))
    return await _replace(bridge, entity, existing)


@router.post(
    "/sms-use-cases",
    status_code=201,
    summary="Create an SMS use case",
    responses={**answers(examples.USE_CASE, 201), **error_responses(403, 422)},
    openapi_extra=body_example(examples.USE_CASE_BODY),
)
async def create_use_case(body: UseCaseBody, bridge: BridgeDep) -> JSONResponse:
    now = _now()
    entity = UseCase(
        id=uuid.uuid4(), **body.model_dump(), deleted=False, created_at=now, updated_at=now
    )
    await bridge.publish_config(entity)
    return JSONResponse(_public(entity, "deleted"), status_code=201)


@router.get(
    "/sms-use-cases/{use_case_id}",
    summary="Get an SMS use case",
    responses={
        **answers(examples.USE_CASE_WITH_NUMBERS, 200),
        **error_responses(403, UseCaseNotFound),
    },
)
async def get_use_case(use_case_id: str, config: ConfigDep) -> Any:
    use_case = _use_case(config, use_case_id)
    out = _public(use_case, "deleted")
    numbers = config.sender_list(use_case.id)
    out["phone_numbers"] = [_public(n, "use_case_id") for n in numbers]
    return out


@router.patch(
    "/sms-use-cases/{use_case_id}",
    summary="Change an SMS use case",
    responses={
        **answers(examples.USE_CASE_PATCHED, 200),
        **error_responses(403, 422, UseCaseNotFound),
    },
    openapi_extra=body_example(examples.USE_CASE_PATCH),
)
async def patch_use_case(
    use_case_id: str, body: UseCasePatch, bridge: BridgeDep, config: ConfigDep
) -> Any:
    use_case = _use_case(config, use_case_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "permitted_regions" in changes:
        changes["permitted_regions"] = tuple(changes["permitted_regions"])
    entity = use_case.model_copy(update={**changes, "updated_at": _now()})
    await bridge.publish_config(UseCase.model_validate(entity.model_dump()))
    return _public(entity, "deleted")


@router.delete(
    "/sms-use-cases/{use_case_id}",
    status_code=204,
    summary="Delete an SMS use case",
    responses=error_responses(403, UseCaseNotFound),
)
async def delete_use_case(use_case_id: str, bridge: BridgeDep, config: ConfigDep) -> Response:
    use_case = _use_case(config, use_case_id)
    entity = use_case.model_copy(update={"deleted": True, "active": False, "updated_at": _now()})
    await bridge.publish_config(entity)
    return Response(status_code=204)


@router.put(
    "/sms-use-cases/{use_case_id}/phone-numbers/{phone_number}",
    summary="Add a number to the sender pool",
    responses={**answers(examples.NUMBER, 200), **error_responses(403, 422, UseCaseNotFound)},
    openapi_extra=body_example(examples.NUMBER_BODY),
)
async def put_phone_number(
    use_case_id: str, phone_number: str, body: NumberBody, bridge: BridgeDep, config: ConfigDep
) -> Any:
    use_case = _use_case(config, use_case_id)
    entity = SenderNumber(
        use_case_id=use_case.id,
        phone_number=_e164(phone_number),
        number_type=body.number_type,
        created_at=_now(),
    )
    await bridge.publish_config(entity)
    return _public(entity)


@router.delete(
    "/sms-use-cases/{use_case_id}/phone-numbers/{phone_number}",
    status_code=204,
    summary="Remove a number from the sender pool",
    responses=error_responses(403, 422, UseCaseNotFound),
)
async def delete_phone_number(
    use_case_id: str, phone_number: str, bridge: BridgeDep, config: ConfigDep
) -> Response:
    use_case = _use_case(config, use_case_id)
    number = _e164(phone_number)
    key = f"sender_number:{use_case.id}:{number}"
    await bridge.delete_config(key)
    return Response(status_code=204)


@router.put(
    "/sms-use-cases/{use_case_id}/opt-outs/{phone_number}",
    summary="Record that a number opted out of this use case",
    responses={**answers(examples.OPT_OUT, 200), **error_responses(403, 422, UseCaseNotFound)},
)
async def put_opt_out(
    use_case_id: str, phone_number: str, bridge: BridgeDep, config: ConfigDep
) -> Any:
    use_case = _use_case(config, use_case_id)
    entity = OptOut(use_case_id=use_case.id, phone_number=_e164(phone_number), created_at=_now())
    await bridge.publish_config(entity)
    return _public(entity)


@router.get(
    "/sms-use-cases/{use_case_id}/opt-outs",
    summary="List the opt-outs of this use case",
    responses={**answers(examples.OPT_OUTS, 200), **error_responses(403, UseCaseNotFound)},
)
async def list_opt_outs(use_case_id: str, config: ConfigDep) -> Any:
    """Every number opted out of the use case, once per source (``admin``: this API;
    ``twilio_21610``: learnt from a send Twilio refused; ``keyword``: the person texted an
    opt-out keyword), by number."""
    use_case = _use_case(config, use_case_id)
    items = [_public(opt_out, "use_case_id") for opt_out in config.opt_outs_of(use_case.id)]
    return {"items": items}


@router.delete(
    "/sms-use-cases/{use_case_id}/opt-outs/{phone_number}",
    status_code=204,
    summary="Remove an opt-out",
    responses=error_responses(403, 422, UseCaseNotFound),
)
async def delete_opt_out(
    use_case_id: str, phone_number: str, bridge: BridgeDep, config: ConfigDep
) -> Response:
    """Remove the number's opt-outs of this use case, whatever their source (an admin
    opt-out stays until this call removes it; an opt-in keyword removes the others too)."""
    use_case = _use_case(config, use_case_id)
    number = _e164(phone_number)
    # Every source's key, held in this view or not (one the worker wrote a moment ago).
    for source in OptOutSource:
        await bridge.delete_config(opt_out_key(use_case.id, number, source))
    return Response(status_code=204)
