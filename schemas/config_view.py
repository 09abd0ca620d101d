"""A typed view of the configuration, fed record by record from the compacted config topic.

Every worker reads the whole compacted topic (a Faust GlobalTable whose changelog *is* the
topic the admin API writes) and keeps typed, indexed copies of the entities here, plus the
offset it has applied, so a send can wait until the configuration its ingress saw is in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from uuid import UUID

from pydantic import ValidationError

from schemas.config import Brand, ConfigChange, OptOut, SenderNumber, Subaccount, UseCase

log = logging.getLogger(__name__)

Entity = Subaccount | Brand | UseCase | SenderNumber | OptOut


class ConfigView:
    """Typed, indexed configuration, updated one changelog record at a time."""

    def __init__(self) -> None:
        self.subaccounts: dict[str, Subaccount] = {}
        self.brands: dict[str, Brand] = {}
        self.use_cases: dict[UUID, UseCase] = {}
        self.senders: defaultdict[UUID, dict[str, SenderNumber]] = defaultdict(dict)
        self.opt_outs: set[tuple[UUID, str]] = set()
        self.applied_offset = -1
        self._changed = asyncio.Condition()

    def apply(self, key: str, value: bytes | None, offset: int) -> None:
        """Apply one record of the compacted topic (``value`` None deletes ``key``)."""
        self.applied_offset = max(self.applied_offset, offset)
        if value is None:
            self._delete(key)
            return
        try:
            entity = ConfigChange.model_validate_json(value).entity
        except ValidationError:
            log.warning("skipping malformed config record key=%s offset=%d", key, offset)
            return
        match entity:
            case Subaccount():
                self.subaccounts[entity.account_sid] = entity
            case Brand():
                self.brands[entity.brand_id] = entity
            case UseCase():
                known = self.use_cases.get(entity.id)
                if known is not None and known.deleted and not entity.deleted:
                    return  # deleted for good: a racing stale update cannot revive it
                self.use_cases[entity.id] = entity
            case SenderNumber():
                self.senders[entity.use_case_id][entity.phone_number] = entity
            case OptOut():
                self.opt_outs.add((entity.use_case_id, entity.phone_number))

    def _delete(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if kind in ("sender_number", "opt_out"):
            use_case, _, number = rest.partition(":")
            try:
                use_case_id = UUID(use_case)
            except ValueError:
                return
            if kind == "sender_number":
                self.senders[use_case_id].pop(number, None)
            else:
                self.opt_outs.discard((use_case_id, number))
        elif kind == "subaccount":
            self.subaccounts.pop(rest, None)
        elif kind == "brand":
            self.brands.pop(rest, None)

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, offset: int, timeout_s: float) -> bool:
        """Wait until ``offset`` of the config topic is applied; False on timeout."""
        if self.applied_offset >= offset:
            return True
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: self.applied_offset >= offset)
            return True
        except TimeoutError:
            log.warning(
                "configuration offset %d not applied within %.1fs (at %d)",
                offset,
                timeout_s,
                self.applied_offset,
            )
            return False

    def sender_list(self, use_case_id: UUID) -> list[SenderNumber]:
        return list(self.senders.get(use_case_id, {}).values())

    def opted_out(self, use_case_id: UUID, number: str) -> bool:
        return (use_case_id, number) in self.opt_outs
