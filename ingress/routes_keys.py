"""``/v1/admin/api-keys``: make, list and revoke API keys.

A key is shown once, in the answer that creates it; the config topic holds only its SHA-256
(``ingress.keys``). Revoking writes a tombstone: every ingress follows the config topic and
refuses the key once it has read it (within 5 s, see ``ingress.keys.FRESHNESS_S``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from feeds.config import ConfigView
from ingress import examples, keys
from ingress.deps import AdminKeyDep, BridgeDep, ConfigDep, require_admin_key
from ingress.docs import answers, body_example, error_responses
from schemas.config import ApiKey, ApiKeyRole, api_key_config_key
from schemas.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/v1/admin/api-keys",
    tags=["API keys (admin)"],
    dependencies=[Depends(require_admin_key)],
)
#: Shown once: neither the browser nor a proxy may keep the answer that holds a new key.
NO_STORE = {"Cache-Control": "no-store"}


class ApiKeyBody(BaseModel):
    """The body of ``POST /v1/admin/api-keys``.

    ``use_case_ids`` is required for an ``sms`` key (a list, or null for every use case), so
    that a forgotten field never makes a key with every use case; an ``admin`` key manages
    the whole configuration and has every use case (null or absent).
    """

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=256)
    role: ApiKeyRole
    use_case_ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _scope_fits_role(self) -> ApiKeyBody:
        if self.role is ApiKeyRole.SMS and "use_case_ids" not in self.model_fields_set:
            raise ValueError(
                "use_case_ids: required for an sms key: a list of use case ids, or null for "
                "every use case"
            )
        if self.role is ApiKeyRole.ADMIN and self.use_case_ids is not None:
            raise ValueError(
                "use_case_ids: an admin key manages every use case; give null (or leave it out)"
            )
        return self


def _public(key: ApiKey) -> dict[str, Any]:
    """What the API shows of a stored key: never its hash."""
    return key.model_dump(mode="json", exclude={"kind", "key_sha256"})


def use_case_scope(
    config: ConfigView, wanted: list[uuid.UUID] | None
) -> tuple[uuid.UUID, ...] | None:
    """``wanted`` without repeats; 422 when one is not a live use case."""
    if wanted is None:
        return None
    scope = tuple(dict.fromkeys(wanted))
    unknown = [str(u) for u in scope if (c := config.use_cases.get(u)) is None or c.deleted]
    if unknown:
        raise InvalidRequest(
            f"Invalid request: use_case_ids: no such use case (or deleted): {', '.join(unknown)}."
        )
    return scope


@router.post(
    "",
    status_code=201,
    summary="Create an API key",
    responses={**answers(examples.API_KEY_CREATED, 201), **error_responses(403, 422)},
    openapi_extra=body_example(examples.API_KEY_BODY),
)
async def create_api_key(
    body: ApiKeyBody, caller: AdminKeyDep, bridge: BridgeDep, config: ConfigDep
) -> JSONResponse:
    """Make a key; the answer is the only place its ``key`` ever appears."""
    key = keys.new_key(body.role)
    entity = ApiKey(
        id=uuid.uuid4(),
        name=body.name,
        role=body.role,
        use_case_ids=use_case_scope(config, body.use_case_ids),
        key_sha256=keys.key_sha256(key),
        created_at=datetime.now(UTC),
    )
    await bridge.publish_config(entity)
    log.info(
        "API key %s (%r, role %s) made by key %s", entity.id, entity.name, entity.role.value,
        caller.key_id, extra={"managed_key": str(entity.id), "by_key": caller.key_id},
    )  # fmt: skip
    return JSONResponse({**_public(entity), "key": key}, status_code=201, headers=NO_STORE)


@router.get(
    "",
    summary="List the API keys",
    responses={**answers(examples.API_KEYS, 200), **error_responses(403)},
)
async def list_api_keys(config: ConfigDep) -> Any:
    """Every key made through this API and not revoked, oldest first, without the keys."""
    return {"items": [_public(k) for k in config.api_keys.all()]}


@router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key",
    responses=error_responses(403, 404),
)
async def revoke_api_key(
    key_id: str, caller: AdminKeyDep, bridge: BridgeDep, config: ConfigDep
) -> Response:
    """Revoke the key: refused by this ingress at once, by every other within 5 s."""
    try:
        key = config.api_keys.get(uuid.UUID(key_id))
    except ValueError:
        key = None
    if key is None:
        raise NotFound(f"No API key with id {key_id!r}, or it was revoked.")
    await bridge.delete_config(api_key_config_key(key.id))
    log.info(
        "API key %s (%r) revoked by key %s", key.id, key.name, caller.key_id,
        extra={"managed_key": str(key.id), "by_key": caller.key_id},
    )  # fmt: skip
    return Response(status_code=204)
