"""An inbound SMS: what a person texted to one of smslane's numbers, as ``sms.inbound`` holds it.

Keyed by ``from_number`` on ``sms.inbound``, so one person's messages stay in order. An
inbound message never changes: ``version`` is always 1 (as the first version of an
``sms.status`` record is), and ``id`` is derived from the subaccount and ``MessageSid``, so
a webhook Twilio retries publishes the same ``id`` again and consumers drop it by ``id``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

#: The namespace of :func:`inbound_id` (uuid5 over ``account_sid:message_sid``).
INBOUND_NAMESPACE = uuid.UUID("3c1d8f0e-92a4-4b7e-8d55-6a0f2e9b7c41")


class KeywordAction(StrEnum):
    """What a message's keyword did to the sender's opt-outs."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


class InboundMessage(BaseModel):
    """One value of ``sms.inbound``."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    version: int = 1
    message_sid: str
    account_sid: str
    messaging_service_sid: str | None
    #: The use case the message counts for (reads are scoped by it): the one whose sender
    #: pool holds ``to_number``, else the oldest of its Messaging Service; None when the
    #: Messaging Service is not one of smslane's.
    use_case_id: uuid.UUID | None
    from_number: str
    to_number: str
    body: str
    #: The keyword the body matched (``STOP``, ``START``, ``HELP``...), if any.
    keyword: str | None = None
    keyword_action: KeywordAction | None = None
    #: When the ingress received the webhook.
    received_at: datetime


def inbound_id(account_sid: str, message_sid: str) -> uuid.UUID:
    """The stable id of an inbound message (the same for every retry of its webhook)."""
    return uuid.uuid5(INBOUND_NAMESPACE, f"{account_sid}:{message_sid}")
