"""An inbound SMS webhook's form, read into what smslane stores and changes. No I/O.

:func:`plan_inbound` turns a signed form into an :class:`InboundPlan`: the
:class:`~schemas.inbound.InboundMessage` for ``sms.inbound`` and the opt-out changes its
keyword makes (``ingress.keywords``) on the use cases of its Messaging Service, read from
the ingress's configuration view. The route publishes the plan.

The use cases of a message are those of its subaccount whose Messaging Service is the
form's ``MessagingServiceSid``; a form without one (a number outside any Messaging Service)
falls back to the use cases whose sender pool holds ``To``. The message's own
``use_case_id`` is the one whose pool holds ``To`` among them, else the oldest of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from feeds.config import ConfigView
from ingress.keywords import OptOutChanges, match_keyword, opt_out_changes
from ingress.twilio_signature import FormParams
from schemas.config import UseCase
from schemas.inbound import InboundMessage, inbound_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundPlan:
    """What one inbound webhook publishes: config changes first, then the message."""

    message: InboundMessage
    changes: OptOutChanges
    use_cases: list[UseCase]


def use_cases_for(
    config: ConfigView, account_sid: str, service_sid: str | None, to: str
) -> list[UseCase]:
    """The use cases an inbound message to ``to`` concerns (see the module's docstring)."""
    if service_sid:
        return config.use_cases_of_service(account_sid, service_sid)
    owning = [
        use_case
        for use_case in config.use_cases.values()
        if not use_case.deleted
        and use_case.account_sid == account_sid
        and to in config.senders.get(use_case.id, {})
    ]
    return sorted(owning, key=lambda use_case: (use_case.created_at, str(use_case.id)))


def owning_use_case(config: ConfigView, use_cases: list[UseCase], to: str) -> UseCase | None:
    """The use case whose sender pool holds ``to``, else the first of ``use_cases``."""
    for use_case in use_cases:
        if to in config.senders.get(use_case.id, {}):
            return use_case
    return use_cases[0] if use_cases else None


def plan_inbound(config: ConfigView, params: FormParams, received_at: datetime) -> InboundPlan:
    """The plan of a signed form that has ``MessageSid``, ``From``, ``To`` and ``Body``."""
    account_sid = params["AccountSid"]
    service_sid = params.get("MessagingServiceSid") or None
    from_number, to = params["From"].strip(), params.get("To", "").strip()
    use_cases = use_cases_for(config, account_sid, service_sid, to)
    keyword = match_keyword(params["Body"], params.get("OptOutType"))
    owner = owning_use_case(config, use_cases, to)
    message_sid = params.get("MessageSid") or params.get("SmsMessageSid") or params["SmsSid"]
    message = InboundMessage(
        id=inbound_id(account_sid, message_sid),
        message_sid=message_sid,
        account_sid=account_sid,
        messaging_service_sid=service_sid,
        use_case_id=owner.id if owner else None,
        from_number=from_number,
        to_number=to,
        body=params["Body"],
        keyword=keyword.word if keyword else None,
        keyword_action=keyword.action if keyword else None,
        received_at=received_at,
    )
    changes = opt_out_changes(keyword, from_number, use_cases, config.number_opt_outs, received_at)
    return InboundPlan(message, changes, use_cases)


def missing_fields(params: FormParams) -> list[str]:
    """The fields an inbound message cannot be stored without, that ``params`` lacks."""
    missing = [name for name in ("From", "Body") if name not in params]
    if not params.get("From", "").strip():
        missing = sorted({*missing, "From"})
    if not any(params.get(name) for name in ("MessageSid", "SmsMessageSid", "SmsSid")):
        missing.append("MessageSid")
    return missing
