"""``X-Twilio-Signature`` of a Twilio webhook, checked the way Twilio computes it.

Twilio signs the URL it requested followed by every form field: keys sorted, and for a key
sent more than once, every one of its values (twilio's ``RequestValidator.compute_signature``
reads them with ``getall``/``getlist``). A form read into a plain dict keeps one value per key
and so fails a valid signature; :func:`parse_form` keeps them all.

The URL is ``SMSLANE_PUBLIC_BASE_URL`` + the path + the query as received, so the check works
behind a proxy or tunnel. The key is the auth token of the subaccount the ``AccountSid``
field names. smslane appends a connection-override fragment (``#rc=3&rp=all``,
:data:`schemas.settings.STATUS_CALLBACK_FRAGMENT`) to the StatusCallback it gives Twilio;
the request carries no fragment, and Twilio's documents leave open whether the signature
covers it, so a signature over the URL with that fragment is accepted too. Both are keyed
with the subaccount's token: accepting either lets no unsigned request through.

Every Twilio webhook of smslane (status callbacks now, inbound messages later) goes through
:func:`verify`.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from feeds.config import ConfigView
from schemas.config import Subaccount
from schemas.settings import STATUS_CALLBACK_FRAGMENT, Settings

log = logging.getLogger(__name__)

#: A form-encoded body: every value of every key, in the order received.
FormParams = ImmutableMultiDict[str, str]


def parse_form(body: bytes) -> FormParams | None:
    """The fields of a form-encoded ``body`` with every value kept; None if it is not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True))


def signed_urls(settings: Settings, path: str, query: str) -> tuple[str, ...]:
    """The URLs a valid signature may have been computed over, for a request to ``path``
    with the raw ``query`` string (empty when there is none): without and with the
    connection-override fragment smslane appends to the URLs it gives Twilio."""
    url = f"{settings.public_base_url}{path}"
    if query:
        url = f"{url}?{query}"
    return (url, f"{url}#{STATUS_CALLBACK_FRAGMENT}")


def verify(
    settings: Settings,
    config: ConfigView,
    path: str,
    query: str,
    params: FormParams,
    signature: str,
) -> Subaccount | None:
    """The subaccount whose auth token signed this request, or None (logged, no secret):
    unknown ``AccountSid``, no signature, or a signature over none of :func:`signed_urls`."""
    account_sid = params.get("AccountSid", "")
    account = config.subaccounts.get(account_sid)
    if account_sid in config.undecryptable:
        reason = "the subaccount's auth token decrypts with none of SMSLANE_SECRET_KEYS"
    elif account is None or not signature:
        reason = "unknown AccountSid" if account is None else "no signature"
    else:
        validator = RequestValidator(account.auth_token)
        urls = signed_urls(settings, path, query)
        if any(validator.validate(url, params, signature) for url in urls):
            return account
        reason = "bad signature"
    log.warning(
        "rejected Twilio webhook %s: %s",
        path,
        reason,
        extra={"account_sid": account_sid, "sid": params.get("MessageSid")},
    )
    return None
