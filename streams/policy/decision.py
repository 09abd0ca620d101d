"""Which scheduled messages smslane's rules no longer allow: a pure function of the record
and the configuration.

Twilio holds a scheduled message and knows none of smslane's rules, so it would send it
whatever changed since the request: the destination opted out (any source), the use case was
deleted or made inactive, its brand was suspended. Such a message is canceled at Twilio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from uuid import UUID

from schemas.config import Brand, BrandStatus, UseCase
from schemas.records import SmsRecord


class Policies(Protocol):
    """What the rules read of the worker's configuration view."""

    @property
    def use_cases(self) -> Mapping[UUID, UseCase]: ...
    @property
    def brands(self) -> Mapping[str, Brand]: ...

    def opted_out(self, use_case_id: UUID, number: str) -> bool: ...


def cancel_reason(record: SmsRecord, config: Policies) -> str | None:
    """Why ``record`` (scheduled) must not be sent any more, or None while it may."""
    use_case = config.use_cases.get(record.use_case_id)
    if use_case is None or use_case.deleted:
        return "use_case_deleted"
    if not use_case.active:
        return "use_case_inactive"
    if config.opted_out(use_case.id, record.to_number):
        return "destination_opted_out"
    brand = config.brands.get(use_case.brand_id)
    if brand is not None and brand.status is BrandStatus.SUSPENDED:
        return "brand_suspended"
    return None
