"""``/v1/admin/webhook-endpoints``: register, list, change and delete webhook endpoints,
rotate their secrets, replay their events (``docs/webhooks.md``).

An endpoint is a config entity like an API key: the secret (``whsec_...``) is shown once, in
the answer that makes it (or rotates it), and the config topic holds it sealed with
``SMSLANE_SECRET_KEYS``. The worker follows the config topic, so a change is in force for
deliveries within 5 s.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from feeds.config import ConfigView
from feeds.secret_box import SecretBox
from ingress import examples
from ingress.deps import (
    AdminKeyDep,
    BridgeDep,
    ConfigDep,
    SettingsDep,
    StoreDep,
    require_admin_key,
)
from ingress.docs import answers, body_example, error_responses
from ingress.params import UNKNOWN_CURSOR, CursorQuery
from ingress.routes_keys import NO_STORE, use_case_scope
from schemas.config import (
    WebhookEndpoint,
    WebhookEventType,
    WebhookSecret,
    webhook_endpoint_config_key,
)
from schemas.errors import InvalidRequest, NotFound
from schemas.records import SmsStatus
from schemas.settings import Settings
from schemas.webhooks import DeliveryStatus, ReplayOrder, url_problem
from store import DeliveryQuery, InvalidCursor

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/v1/admin/webhook-endpoints",
    tags=["Webhook endpoints (admin)"],
    dependencies=[Depends(require_admin_key)],
)
#: How long a rotated-out secret keeps signing beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)
SECRET_PREFIX = "whsec_"


class EndpointBody(BaseModel):
    """The body of ``POST /v1/admin/webhook-endpoints``."""

    model_config = ConfigDict(extra="ignore")
    url: str = Field(min_length=1, max_length=2048)
    events: list[WebhookEventType] = Field(min_length=1, max_length=2)
    use_case_ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=1000)
    statuses: list[SmsStatus] | None = Field(None, min_length=1, max_length=20)
    description: str | None = Field(None, max_length=1024)


class EndpointPatch(BaseModel):
    """The body of ``PATCH .../{id}``: any of the fields; null clears a filter."""

    model_config = ConfigDict(extra="ignore")
    url: str | None = Field(None, min_length=1, max_length=2048)
    events: list[WebhookEventType] | None = Field(None, min_length=1, max_length=2)
    use_case_ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=1000)
    statuses: list[SmsStatus] | None = Field(None, min_length=1, max_length=20)
    description: str | None = Field(None, max_length=1024)
    enabled: StrictBool | None = None


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    since: datetime


def public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the API shows of an endpoint: never its secrets."""
    return endpoint.model_dump(mode="json", exclude={"kind", "secrets"})


def _checked_url(url: str, settings: Settings) -> str:
    problem = url_problem(url, allow_private=settings.webhook_allow_private_urls == "on")
    if problem is not None:
        raise InvalidRequest(f"Invalid request: url: {problem}.")
    return url


def _statuses(statuses: list[SmsStatus] | None) -> tuple[str, ...] | None:
    return None if statuses is None else tuple(dict.fromkeys(s.value for s in statuses))


def _new_secret(box: SecretBox) -> tuple[str, WebhookSecret]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    return secret, WebhookSecret(sealed=box.seal(secret))


def _endpoint(config: ConfigView, endpoint_id: str) -> WebhookEndpoint:
    try:
        endpoint = config.webhook_endpoints.get(uuid.UUID(endpoint_id))
    except ValueError:
        endpoint = None
    if endpoint is None:
        raise NotFound(f"No webhook endpoint with id {endpoint_id!r}, or it was deleted.")
    return endpoint


@router.post(
    "", status_code=201, summary="Register a webhook endpoint",
    responses={**answers(examples.WEBHOOK_ENDPOINT_CREATED, 201), **error_responses(403, 422)},
    openapi_extra=body_example(examples.WEBHOOK_ENDPOINT_BODY),
)  # fmt: skip
async def create_endpoint(
    body: EndpointBody, caller: AdminKeyDep, bridge: BridgeDep, config: ConfigDep,
    settings: SettingsDep,
) -> JSONResponse:  # fmt: skip
    """Register an endpoint; the answer is the only place its ``secret`` appears."""
    secret, sealed = _new_secret(bridge.secrets)
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=_checked_url(body.url, settings),
        events=tuple(dict.fromkeys(body.events)),
        use_case_ids=use_case_scope(config, body.use_case_ids),
        statuses=_statuses(body.statuses),
        description=body.description,
        secrets=(sealed,),
        created_at=now,
        updated_at=now,
    )
    await bridge.publish_config(endpoint)
    log.info(
        "webhook endpoint %s registered by key %s", endpoint.id, caller.key_id,
        extra={"endpoint_id": str(endpoint.id), "by_key": caller.key_id},
    )  # fmt: skip
    return JSONResponse({**public(endpoint), "secret": secret}, status_code=201, headers=NO_STORE)


@router.get(
    "", summary="List the webhook endpoints",
    responses={**answers(examples.WEBHOOK_ENDPOINTS, 200), **error_responses(403)},
)  # fmt: skip
async def list_endpoints(config: ConfigDep) -> Any:
    """Every endpoint, oldest first, without secrets."""
    endpoints = sorted(config.webhook_endpoints.values(), key=lambda e: (e.created_at, str(e.id)))
    return {"items": [public(e) for e in endpoints]}


@router.get(
    "/{endpoint_id}", summary="Get a webhook endpoint",
    responses={**answers(examples.WEBHOOK_ENDPOINT, 200), **error_responses(403, 404)},
)  # fmt: skip
async def get_endpoint(endpoint_id: str, config: ConfigDep) -> Any:
    return public(_endpoint(config, endpoint_id))


@router.patch(
    "/{endpoint_id}", summary="Change a webhook endpoint",
    responses={**answers(examples.WEBHOOK_ENDPOINT, 200), **error_responses(403, 404, 422)},
    openapi_extra=body_example(examples.WEBHOOK_PATCH),
)  # fmt: skip
async def patch_endpoint(
    endpoint_id: str, body: EndpointPatch, bridge: BridgeDep, config: ConfigDep,
    settings: SettingsDep,
) -> Any:  # fmt: skip
    """Change the fields given; in force for deliveries within 5 s."""
    endpoint = _endpoint(config, endpoint_id)
    given = body.model_fields_set
    changes: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if body.url is not None:
        changes["url"] = _checked_url(body.url, settings)
    if body.events is not None:
        changes["events"] = tuple(dict.fromkeys(body.events))
    if "use_case_ids" in given:
        changes["use_case_ids"] = use_case_scope(config, body.use_case_ids)
    if "statuses" in given:
        changes["statuses"] = _statuses(body.statuses)
    if "description" in given:
        changes["description"] = body.description
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    changed = endpoint.model_copy(update=changes)
    await bridge.publish_config(changed)
    return public(changed)


@router.delete(
    "/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint",
    responses=error_responses(403, 404),
)  # fmt: skip
async def delete_endpoint(
    endpoint_id: str, caller: AdminKeyDep, bridge: BridgeDep, config: ConfigDep
) -> Response:
    """Delete the endpoint: nothing more is delivered to it from 5 s after the answer."""
    endpoint = _endpoint(config, endpoint_id)
    await bridge.delete_config(webhook_endpoint_config_key(endpoint.id))
    log.info(
        "webhook endpoint %s deleted by key %s", endpoint.id, caller.key_id,
        extra={"endpoint_id": str(endpoint.id), "by_key": caller.key_id},
    )  # fmt: skip
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret", summary="Rotate a webhook endpoint's secret",
    responses={**answers(examples.WEBHOOK_ENDPOINT_CREATED, 200), **error_responses(403, 404)},
)  # fmt: skip
async def rotate_secret(endpoint_id: str, bridge: BridgeDep, config: ConfigDep) -> JSONResponse:
    """A new secret, shown only here; the one it replaces signs beside it for 24 hours."""
    endpoint = _endpoint(config, endpoint_id)
    now = datetime.now(UTC)
    secret, sealed = _new_secret(bridge.secrets)
    kept = tuple(
        s.model_copy(update={"expires_at": s.expires_at or now + ROTATION_OVERLAP})
        for s in endpoint.secrets
        if s.expires_at is None or s.expires_at > now
    )
    rotated = endpoint.model_copy(update={"secrets": (sealed, *kept), "updated_at": now})
    await bridge.publish_config(rotated)
    return JSONResponse({**public(rotated), "secret": secret}, headers=NO_STORE)


#: The fields of a delivery in the log, as the API shows them.
DELIVERY_FIELDS = (
    "event_id", "type", "status", "attempts", "last_status_code", "last_error", "response_head",
    "next_attempt_at", "delivered_at", "created_at", "updated_at",
)  # fmt: skip


@router.get(
    "/{endpoint_id}/deliveries", summary="List a webhook endpoint's deliveries",
    responses={**answers(examples.WEBHOOK_DELIVERIES, 200), **error_responses(403, 404, 422)},
)  # fmt: skip
async def list_deliveries(
    endpoint_id: str,
    config: ConfigDep,
    store: StoreDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorQuery = None,
) -> Any:
    """The endpoint's deliveries of the last 7 days, newest event first; follow
    ``next_cursor`` for the next page."""
    endpoint = _endpoint(config, endpoint_id)
    query = DeliveryQuery(endpoint_id=endpoint.id, status=status, limit=limit, cursor=cursor)
    try:
        items, next_cursor = await store.list_deliveries(query)
    except InvalidCursor:
        raise InvalidRequest(UNKNOWN_CURSOR) from None
    listed = [item.model_dump(mode="json", include=set(DELIVERY_FIELDS)) for item in items]
    return {"items": listed, "next_cursor": next_cursor}


@router.post(
    "/{endpoint_id}/replay", status_code=202, summary="Replay a webhook endpoint's events",
    responses={**answers(examples.WEBHOOK_REPLAY, 202), **error_responses(403, 404, 422)},
    openapi_extra=body_example(examples.WEBHOOK_REPLAY_BODY),
)  # fmt: skip
async def replay(endpoint_id: str, body: ReplayBody, bridge: BridgeDep, config: ConfigDep) -> Any:
    """Deliver again the latest version of every matching record changed since ``since``
    (and the inbound messages still held), each on the normal schedule from now."""
    endpoint = _endpoint(config, endpoint_id)
    since = body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)
    order = ReplayOrder(endpoint_id=endpoint.id, since=since, requested_at=datetime.now(UTC))
    await bridge.publish_webhook_replay(order)
    return {"id": str(endpoint.id), "since": since.isoformat().replace("+00:00", "Z")}
