"""Configuration entities: Twilio subaccounts, brands, use cases, sender numbers, opt-outs,
API keys, webhook endpoints.

A subaccount travels as :class:`SealedSubaccount` (its auth token encrypted); the clear
:class:`Subaccount` exists only in a process's memory. The entities travel as
:class:`ConfigChange` values on the compacted ``config.changes`` topic, keyed by
:func:`config_key`; a ``None`` value (tombstone) deletes the entity.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BrandStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    SUSPENDED = "suspended"


class A2pCampaignStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


class NumberType(StrEnum):
    LONG_CODE = "long_code"
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"


class _Entity(BaseModel):
    model_config = ConfigDict(frozen=True)


class Subaccount(_Entity):
    """A Twilio subaccount with its auth token in clear: held in memory only, by the process
    that calls Twilio or checks a signature. Topics hold it as :class:`SealedSubaccount`."""

    account_sid: str
    auth_token: str = Field(repr=False)
    friendly_name: str | None = None
    created_at: datetime
    updated_at: datetime


class SealedSubaccount(_Entity):
    """A Twilio subaccount as the config topic holds it: the auth token sealed (encrypted and
    authenticated) with the first key of ``SMSLANE_SECRET_KEYS`` (``feeds.secret_box``).

    ``auth_token`` is read only from records written before tokens were sealed; it is never
    serialized (``exclude``), so no record written now can carry a token in clear.
    """

    kind: Literal["subaccount"] = "subaccount"
    account_sid: str
    sealed_auth_token: str | None = None
    auth_token: str | None = Field(None, repr=False, exclude=True)
    friendly_name: str | None = None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _has_token(self) -> SealedSubaccount:
        if self.sealed_auth_token is None and self.auth_token is None:
            raise ValueError("a subaccount record needs sealed_auth_token")
        return self


class Brand(_Entity):
    kind: Literal["brand"] = "brand"
    brand_id: str
    name: str
    status: BrandStatus
    created_at: datetime
    updated_at: datetime


class UseCase(_Entity):
    kind: Literal["use_case"] = "use_case"
    id: UUID
    name: str
    account_sid: str
    messaging_service_sid: str
    brand_id: str
    a2p_campaign_status: A2pCampaignStatus
    permitted_regions: tuple[str, ...]
    active: bool
    deleted: bool = False
    created_at: datetime
    updated_at: datetime


class SenderNumber(_Entity):
    kind: Literal["sender_number"] = "sender_number"
    use_case_id: UUID
    phone_number: str
    number_type: NumberType
    created_at: datetime


class OptOutSource(StrEnum):
    """Who recorded an opt-out. Each source has its own config key, so an admin opt-out and
    a keyword opt-out of one number coexist and each is removed on its own terms."""

    ADMIN = "admin"
    """The admin API (``PUT .../opt-outs/{number}``); only the admin API removes it."""
    TWILIO_21610 = "twilio_21610"
    """Learnt from Twilio error 21610 on a send; an opt-in keyword removes it."""
    KEYWORD = "keyword"
    """The person texted an opt-out keyword; an opt-in keyword removes it."""


class OptOut(_Entity):
    kind: Literal["opt_out"] = "opt_out"
    use_case_id: UUID
    phone_number: str
    #: Records written before sources existed were all the admin API's.
    source: OptOutSource = OptOutSource.ADMIN
    #: The keyword texted (``STOP``...), for source ``keyword``.
    keyword: str | None = None
    created_at: datetime


class ApiKeyRole(StrEnum):
    SMS = "sms"
    ADMIN = "admin"


class ApiKey(_Entity):
    """An API key created through the admin API, as the config topic holds it: only the
    SHA-256 of the key (``key_sha256``, hex), never the key. ``use_case_ids`` None: every
    use case. A revoked key is deleted (a tombstone on its :func:`config_key`)."""

    kind: Literal["api_key"] = "api_key"
    id: UUID
    name: str
    role: ApiKeyRole
    use_case_ids: tuple[UUID, ...] | None
    key_sha256: str = Field(repr=False)
    created_at: datetime


class WebhookEventType(StrEnum):
    """What a webhook endpoint can receive: the topic each event comes from."""

    STATUS = "sms.status"
    INBOUND = "sms.inbound"


class WebhookSecret(_Entity):
    """One signing secret of an endpoint, sealed like a Twilio auth token. ``expires_at``
    None: the current secret; else a rotated-out one that still signs until then."""

    sealed: str = Field(repr=False)
    expires_at: datetime | None = None


class WebhookEndpoint(_Entity):
    """A client's HTTPS endpoint that receives ``events`` (``docs/webhooks.md``).

    ``use_case_ids`` / ``statuses`` None: every use case / every status. ``secrets`` holds
    the current secret first, then rotated-out ones until their ``expires_at``.
    """

    kind: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: UUID
    url: str
    events: tuple[WebhookEventType, ...]
    use_case_ids: tuple[UUID, ...] | None
    statuses: tuple[str, ...] | None
    description: str | None = None
    enabled: bool = True
    secrets: tuple[WebhookSecret, ...] = Field(min_length=1, repr=False)
    created_at: datetime
    updated_at: datetime


ConfigEntity = Annotated[
    SealedSubaccount | Brand | UseCase | SenderNumber | OptOut | ApiKey | WebhookEndpoint,
    Field(discriminator="kind"),
]


class ConfigChange(BaseModel):
    """A value of ``config.changes``: the entity as it now is."""

    model_config = ConfigDict(frozen=True)

    entity: ConfigEntity


def config_key(
    entity: SealedSubaccount | Brand | UseCase | SenderNumber | OptOut | ApiKey | WebhookEndpoint,
) -> str:
    """The compacted-topic key of an entity: one key per entity, so compaction keeps the last."""
    match entity:
        case SealedSubaccount():
            return f"subaccount:{entity.account_sid}"
        case Brand():
            return f"brand:{entity.brand_id}"
        case UseCase():
            return f"use_case:{entity.id}"
        case SenderNumber():
            return f"sender_number:{entity.use_case_id}:{entity.phone_number}"
        case OptOut():
            return opt_out_key(entity.use_case_id, entity.phone_number, entity.source)
        case ApiKey():
            return api_key_config_key(entity.id)
        case WebhookEndpoint():
            return webhook_endpoint_config_key(entity.id)


def webhook_endpoint_config_key(endpoint_id: UUID) -> str:
    """The config-topic key of the webhook endpoint ``endpoint_id`` (its tombstone deletes it)."""
    return f"webhook_endpoint:{endpoint_id}"


def api_key_config_key(key_id: UUID) -> str:
    """The config-topic key of the API key ``key_id`` (its tombstone revokes it)."""
    return f"api_key:{key_id}"


def opt_out_key(use_case_id: UUID, phone_number: str, source: OptOutSource) -> str:
    """``opt_out:{use case}:{number}``, with ``:{source}`` after it unless the source is the
    admin API (whose records kept the key they had before sources existed)."""
    key = f"opt_out:{use_case_id}:{phone_number}"
    return key if source is OptOutSource.ADMIN else f"{key}:{source.value}"


def parse_opt_out_key(rest: str) -> tuple[UUID, str, OptOutSource] | None:
    """The use case, number and source of an opt-out key without its ``opt_out:``; None if
    it is not one."""
    parts = rest.split(":")
    if len(parts) not in (2, 3):
        return None
    try:
        use_case_id = UUID(parts[0])
        source = OptOutSource(parts[2]) if len(parts) == 3 else OptOutSource.ADMIN
    except ValueError:
        return None
    return use_case_id, parts[1], source
