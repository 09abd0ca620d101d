"""Accepting a message: the checks Twilio makes on a create call, and the message store.

No I/O here: :func:`accept` turns the create call's form into a :class:`SimMessage` or the
:class:`TwilioError` Twilio would answer, and :class:`MessageStore` remembers what was created.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Container, Iterator, Mapping

from twilio_sim import errors
from twilio_sim.config import SimConfig
from twilio_sim.errors import TwilioError
from twilio_sim.models import SimMessage
from twilio_sim.segments import count_segments
from twilio_sim.senders import SenderSelector

MAX_BODY_CHARS = 1600

_PHONE_LIKE = re.compile(r"^(?:[a-z]+:)?\+?[0-9][0-9 ().-]{5,19}$")


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-shaped SID: two letters and 32 lowercase hex digits."""
    return prefix + os.urandom(16).hex()


def accept(
    config: SimConfig,
    selector: SenderSelector,
    account_sid: str,
    form: Mapping[str, str],
    now: float,
    unsubscribed: Container[tuple[str, str]] = (),
) -> SimMessage | TwilioError:
    """Check a ``Messages.json`` create call the way Twilio does and build the message.

    A Messaging Service send starts ``accepted`` with its sender chosen now (it shows only once
    the message moves on); a send with ``From`` starts ``queued``. ``unsubscribed`` holds
    the (Messaging Service, person) pairs an opt-out keyword unsubscribed: 21610.
    """
    to = form.get("To", "").strip()
    if not to:
        return errors.missing_to()
    body = form.get("Body", "")
    if not body and "MediaUrl" not in form and "ContentSid" not in form:
        return errors.missing_body()
    if len(body) > MAX_BODY_CHARS:
        return errors.body_too_long()
    service_sid = form.get("MessagingServiceSid") or None
    from_ = form.get("From") or None
    if service_sid is None and from_ is None:
        return errors.missing_from()
    if service_sid is not None:
        if not selector.knows(service_sid):
            return errors.unknown_service(service_sid)
        if selector.is_empty(service_sid):
            return errors.empty_service(service_sid)
    magic = errors.MAGIC_TO_NUMBERS.get(to)
    if magic is not None:
        return magic(to)
    if service_sid is not None and (service_sid, to) in unsubscribed:
        return errors.unsubscribed(to)
    if not _PHONE_LIKE.match(to):
        return errors.invalid_to(to)
    if service_sid is not None and from_ is None:
        sender = selector.choose(service_sid, to)
        status = "accepted"
    else:
        sender = from_ or ""
        status = "queued"
    return SimMessage(
        sid=new_sid(),
        account_sid=account_sid,
        to=to,
        body=body,
        messaging_service_sid=service_sid,
        requested_from=from_,
        sender=sender,
        num_segments=count_segments(body),
        status_callback=form.get("StatusCallback") or None,
        scenario=config.scenario_for(to),
        status=status,
        created=now,
        updated=now,
    )


class MessageStore:
    """Created messages in creation order, by SID too; the oldest forgotten past a bound."""

    def __init__(self, limit: int) -> None:
        self._order: deque[SimMessage] = deque()
        self._by_sid: dict[str, SimMessage] = {}
        self._next_seq = 1
        self.limit = limit

    def add(self, message: SimMessage) -> None:
        """Remember ``message``, numbering it after every message added before (ever)."""
        message.seq = self._next_seq
        self._next_seq += 1
        self._order.append(message)
        self._by_sid[message.sid] = message
        while len(self._order) > self.limit:
            self._by_sid.pop(self._order.popleft().sid, None)

    def get(self, sid: str) -> SimMessage | None:
        """The message with ``sid``, if remembered."""
        return self._by_sid.get(sid)

    def select(self, to: str | None = None) -> list[SimMessage]:
        """Messages in creation order, only those sent to ``to`` when given."""
        if to is None:
            return list(self._order)
        return [message for message in self._order if message.to == to]

    def clear(self) -> None:
        """Forget everything."""
        self._order.clear()
        self._by_sid.clear()

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[SimMessage]:
        return iter(list(self._order))
