"""The status state machine of an SMS record: Twilio status callbacks in, new records out.

Pure functions over plain values (contract, "Status callbacks"): no clock, no I/O. Every
timestamp written comes from :attr:`CallbackFacts.received_at`, the ingress's clock when the
callback arrived, so replaying the ``sms.callbacks`` topic rebuilds identical records.

Order independence
------------------
Twilio may call back out of order and Kafka may redeliver. For one message whose callbacks
contain exactly one terminal event (``delivered``, ``undelivered``, ``failed``; redelivered
copies carry identical facts), applying the callbacks in *any* order, with any duplicates,
ends in the same record as applying them in lifecycle order, on every field but one:

* ``status``, ``delivered_at``, ``errored_at``, ``error_code`` come from the terminal callback
  alone, which is applied exactly once (a terminal record never changes again).
* ``updated_at`` is the ``received_at`` of the terminal callback: the terminal transition is
  always a change and always the last one, whatever came before it.
* ``from_number`` / ``num_segments`` are equal, provided Twilio reports the same value on every
  callback that carries them and, once known, on every later callback (it does: the sender is
  chosen once and the segment count is fixed at handoff). The terminal callback then carries
  them whenever any callback does, so they are filled by the time the record turns terminal.
* ``handed_off_at`` is the one order-dependent field. It is the ``received_at`` of the first
  *applied* callback that proves a carrier handoff: ``sent``, or ``delivered`` / ``undelivered``
  reaching a record that was never marked ``sent`` (both outcomes come from a carrier, so a
  handoff evidently happened). In lifecycle order that is the ``sent`` callback; if the terminal
  callback overtakes it, the terminal callback's time, and the late ``sent`` is dropped because
  a terminal record never changes. Leaving ``handed_off_at`` null in that case would state that
  a delivered message was never handed off, which is false and stays false forever; the time at
  which smslane first learned of the handoff is the truthful value it can give.

A ``read`` after ``delivered`` is a second terminal event (both map to ``delivered``): it is
dropped, so ``delivered_at`` is the time of whichever of the two was applied first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.records import TWILIO_STATUS_MAP, SmsRecord, SmsStatus, record_status

#: Statuses that only a carrier reports, so they prove the message was handed off.
_HANDOFF_STATUSES = frozenset({SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.UNDELIVERED})
#: Statuses that set ``errored_at`` and ``error_code``.
_ERROR_STATUSES = frozenset({SmsStatus.FAILED, SmsStatus.UNDELIVERED})


@dataclass(frozen=True)
class CallbackFacts:
    """What one Twilio status callback says, parsed and checked by :func:`parse_callback`.

    ``warnings`` lists fields that were present but unusable and were read as unknown (for
    example a non-numeric ``ErrorCode``); the caller logs them.
    """

    message_sid: str
    twilio_status: str
    status: SmsStatus
    from_number: str | None
    num_segments: int | None
    error_code: int | None
    received_at: datetime
    warnings: tuple[str, ...] = ()
    #: The subaccount the callback names (``AccountSid``); ``None`` when it names none.
    account_sid: str | None = None

    def status_for(self, record: SmsRecord) -> SmsStatus:
        """The status this callback means for ``record``: ``status`` for a message sent at
        once, Twilio's ``scheduled`` / ``canceled`` kept for one sent with ``send_at``."""
        return record_status(self.twilio_status, scheduled=record.scheduled) or self.status


@dataclass(frozen=True)
class Rejected:
    """Why a callback cannot be applied to any record at all."""

    reason: str


def _field(params: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` present with a non-blank value, stripped; else ``None``."""
    for name in names:
        value = params.get(name, "").strip()
        if value:
            return value
    return None


def _non_negative_int(raw: str | None, name: str, warnings: list[str]) -> int | None:
    """``raw`` as an int, or ``None`` (with a warning) when it is not ASCII digits."""
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        return int(raw)
    warnings.append(f"ignored non-numeric {name} {raw!r}")
    return None


def parse_callback(params: Mapping[str, str], received_at: datetime) -> CallbackFacts | Rejected:
    """Read a Twilio status callback's form fields into :class:`CallbackFacts`.

    ``MessageSid`` and ``MessageStatus`` are required (``SmsSid`` / ``SmsStatus``, which Twilio
    sends alongside them, stand in when they are missing or blank); without them, or with a
    status outside the contract's table, the callback is :class:`Rejected`. Optional fields
    degrade to ``None``: a blank ``From``; a ``NumSegments`` of ``"0"`` (Twilio's value before
    handoff on messaging-service sends, meaning "not known yet"); and a non-numeric
    ``ErrorCode`` or ``NumSegments``, which also adds an entry to ``warnings``. Status values
    are matched case-insensitively and reported lower-case.
    """
    message_sid = _field(params, "MessageSid", "SmsSid")
    if message_sid is None:
        return Rejected("missing MessageSid")
    raw_status = _field(params, "MessageStatus", "SmsStatus")
    if raw_status is None:
        return Rejected("missing MessageStatus")
    twilio_status = raw_status.lower()
    status = TWILIO_STATUS_MAP.get(twilio_status)
    if status is None:
        return Rejected(f"unknown MessageStatus {raw_status!r}")

    warnings: list[str] = []
    error_code = _non_negative_int(_field(params, "ErrorCode"), "ErrorCode", warnings)
    num_segments = _non_negative_int(_field(params, "NumSegments"), "NumSegments", warnings)
    return CallbackFacts(
        message_sid=message_sid,
        twilio_status=twilio_status,
        status=status,
        from_number=_field(params, "From"),
        num_segments=num_segments or None,  # "0": not known before handoff
        error_code=error_code,
        received_at=received_at,
        warnings=tuple(warnings),
        account_sid=_field(params, "AccountSid"),
    )


def from_other_subaccount(facts: CallbackFacts, account_sid: str | None) -> bool:
    """Whether a callback must be dropped because it does not come from ``account_sid``, the
    subaccount the message was sent through (contract, "Callbacks stay within their
    subaccount"). A callback naming no subaccount is not from it. With ``account_sid``
    unknown (a record kept before it was), every callback is accepted, as before."""
    return account_sid is not None and facts.account_sid != account_sid


def apply_callback(record: SmsRecord, facts: CallbackFacts) -> SmsRecord | None:
    """The record after ``facts``, or ``None`` when the callback changes nothing.

    Rules (contract, "Status callbacks"):

    * A terminal record never changes: ``None``.
    * A callback whose status ranks higher than the record's sets the status, and:
      ``handed_off_at`` on ``sent``, and on ``delivered`` / ``undelivered`` if it is still null
      (see the module docstring); ``delivered_at`` on ``delivered``; ``errored_at`` and
      ``error_code`` (``None`` when the callback has none) on ``failed`` / ``undelivered``;
      ``canceled_at`` on ``canceled`` (a record sent with ``send_at``, see
      :meth:`CallbackFacts.status_for`).
    * Any callback may fill a null ``from_number`` / ``num_segments`` from its facts; values
      already set are never overwritten.
    * ``updated_at`` is ``facts.received_at`` on every change. Nothing else moves it, so a
      callback that changes no field (duplicate, regression) yields ``None``.

    Raises ``ValueError`` when ``facts`` name another message: callers route by
    ``message_sid``, so a mismatch is a bug rather than a callback to drop.
    """
    if facts.message_sid != record.message_sid:
        raise ValueError(
            f"callback for {facts.message_sid!r} applied to record of {record.message_sid!r}"
        )
    if record.status.terminal:
        return None

    changes: dict[str, Any] = {}
    if record.from_number is None and facts.from_number is not None:
        changes["from_number"] = facts.from_number
    if record.num_segments is None and facts.num_segments is not None:
        changes["num_segments"] = facts.num_segments

    status = facts.status_for(record)
    if status.rank > record.status.rank:
        changes["status"] = status
        if status in _HANDOFF_STATUSES and record.handed_off_at is None:
            changes["handed_off_at"] = facts.received_at
        if status is SmsStatus.DELIVERED:
            changes["delivered_at"] = facts.received_at
        if status is SmsStatus.CANCELED:
            changes["canceled_at"] = facts.received_at
        if status in _ERROR_STATUSES:
            changes["errored_at"] = facts.received_at
            changes["error_code"] = facts.error_code

    if not changes:
        return None
    changes["updated_at"] = facts.received_at
    return record.model_copy(update=changes)
