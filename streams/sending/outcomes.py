"""What each send request ended in: the ``outcome_by_request`` table, typed.

Every read and write of the table's values goes through :class:`OutcomeTable`, the one
place that knows their encoding. The table underneath is anything with ``get``, item
assignment and deletion, and a ``put`` whose result is done once the write is durable (the
worker's Faust :class:`~streams.tables.ChangelogTable`; a dict in unit tests).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Iterator
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.events import ErrorBody, SendReply, SendRequest, SendTarget
from schemas.records import SmsCreated, SmsRecord
from schemas.topics import Codec

log = logging.getLogger(__name__)


class Outcome(BaseModel):
    """What a request ended in (or, with ``in_flight``, that Twilio is being called)."""

    model_config = ConfigDict(frozen=True)

    body_hash: str
    decided_at: datetime
    status_code: int
    record: SmsRecord | None = None
    error: ErrorBody | None = None
    retry_after: int | None = None
    #: Written (and flushed to the changelog) before Twilio is called: found on a
    #: redelivery, it means an earlier attempt may have reached Twilio.
    in_flight: bool = False
    #: On a marker: the request itself, so that reconciliation can adopt or send it.
    request: SendRequest | None = None
    #: On a marker: where the create call goes (subaccount, service, destination), as the
    #: checks chose it; None on markers written before it existed, or before the checks.
    target: SendTarget | None = None
    #: On a created message: the subaccount and Messaging Service it was sent through, for
    #: its ``sms.created`` event only (the reply and the public record leave them out).
    account_sid: str | None = None
    messaging_service_sid: str | None = None

    def created_event(self) -> SmsCreated:
        """The ``sms.created`` value of a created message (raises without a record)."""
        if self.record is None:
            raise ValueError("no record: the request created no message")
        return SmsCreated(
            **self.record.model_dump(),
            account_sid=self.account_sid,
            messaging_service_sid=self.messaging_service_sid,
        )

    def reply(self, request: SendRequest) -> SendReply:
        return SendReply(
            correlation_id=request.correlation_id,
            request_id=request.request_id,
            status_code=self.status_code,
            record=self.record,
            error=self.error,
            retry_after=self.retry_after,
        )

    @classmethod
    def marker(
        cls, request: SendRequest, now: datetime, target: SendTarget | None = None
    ) -> Outcome:
        """The in-flight marker of ``request`` (whose create call goes to ``target``)."""
        return cls(
            body_hash=request.body_hash, decided_at=now, status_code=0, in_flight=True,
            request=request, target=target,
        )  # fmt: skip


CODEC: Codec[Outcome] = Codec(Outcome)


class Table(Protocol):
    """What :class:`OutcomeTable` needs of the table under it."""

    def get(self, key: bytes) -> bytes | None: ...
    def put(self, key: bytes, value: bytes) -> Awaitable[object]: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class OutcomeTable:
    """``outcome_by_request``: request id → :class:`Outcome`."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, request_id: UUID) -> Outcome | None:
        return self.decode(request_id.bytes, self._table.get(request_id.bytes))

    def get_raw(self, key: bytes) -> bytes | None:
        return self._table.get(key)

    def mark_in_flight(
        self, request: SendRequest, now: datetime, target: SendTarget | None = None
    ) -> Awaitable[object]:
        """Write the marker; the result is done once it is durable."""
        marker = Outcome.marker(request, now, target)
        return self._table.put(request.request_id.bytes, CODEC.encode(marker))

    def record(self, request_id: UUID, outcome: Outcome) -> None:
        self._table[request_id.bytes] = CODEC.encode(outcome)

    def forget(self, request_id: UUID) -> None:
        """Remove the request's entry, so that a retry is decided afresh."""
        del self._table[request_id.bytes]

    def delete_key(self, key: bytes) -> None:
        del self._table[key]

    def scan(self) -> Iterator[tuple[bytes, Outcome]]:
        """Every decodable entry (a snapshot: the caller may await between items)."""
        for key, value in list(self._table.items()):
            outcome = self.decode(key, value)
            if outcome is not None:
                yield key, outcome

    @staticmethod
    def decode(key: bytes, value: bytes | None) -> Outcome | None:
        if value is None:
            return None
        try:
            return CODEC.decode(value)
        except ValidationError:
            log.error("outcome_by_request holds an undecodable value for key %s", key.hex())
            return None
