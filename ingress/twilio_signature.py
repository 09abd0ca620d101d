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
:func:`verify`. It computes what twilio's ``RequestValidator.validate`` does (the URL as given
and with its default port added or removed), but builds the signed fields once for every URL
tried and stops at the first match: ``validate`` sorts the fields and computes both HMACs per
URL every time, up to four per request here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
from urllib.parse import parse_qsl, urlparse

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator, add_port, remove_port

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
    return _signed_urls(settings.public_base_url, path, query)


def _signed_urls(public_base_url: str, path: str, query: str) -> tuple[str, ...]:
    url = f"{public_base_url}{path}"
    if query:
        url = f"{url}?{query}"
    return (url, f"{url}#{STATUS_CALLBACK_FRAGMENT}")


@functools.lru_cache(maxsize=64)
def candidate_urls(public_base_url: str, path: str, query: str) -> tuple[str, ...]:
    """Every URL a valid signature may cover, in the order tried: each of
    :func:`signed_urls` as given, then without and with its default port (twilio's
    ``remove_port``/``add_port``, as ``RequestValidator.validate`` tries them), no repeats."""
    urls: dict[str, None] = {}
    for url in _signed_urls(public_base_url, path, query):
        parsed = urlparse(url)
        urls.update(dict.fromkeys((remove_port(parsed), add_port(parsed))))
    return tuple(urls)


def signed_fields(params: FormParams) -> str:
    """What Twilio appends to the URL before signing: every key sorted, each followed by
    each of its distinct values sorted (twilio's ``RequestValidator.compute_signature``)."""
    return "".join(
        key + value for key in sorted(set(params)) for value in sorted(set(params.getlist(key)))
    )


def signature_matches(
    auth_token: str, urls: tuple[str, ...], params: FormParams, signature: str
) -> bool:
    """Whether ``signature`` is the base64 HMAC-SHA1 of one of ``urls`` + the form's fields."""
    key, fields, expected = auth_token.encode(), signed_fields(params), signature.encode()
    for url in urls:
        digest = hmac.new(key, (url + fields).encode(), hashlib.sha1).digest()
        if hmac.compare_digest(base64.b64encode(digest), expected):
            return True
    return False


def _valid(auth_token: str, urls: tuple[str, ...], params: FormParams, signature: str) -> bool:
    """:func:`signature_matches`; a URL with ``bodySHA256`` (Twilio's scheme for JSON bodies,
    which also checks the body's hash) goes to twilio's own validator instead."""
    if any("bodySHA256" in url for url in urls):
        validator = RequestValidator(auth_token)
        return any(validator.validate(url, params, signature) for url in urls)
    return signature_matches(auth_token, urls, params, signature)


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
        urls = candidate_urls(settings.public_base_url, path, query)
        if _valid(account.auth_token, urls, params, signature):
            return account
        reason = "bad signature"
    log.warning(
        "rejected Twilio webhook %s: %s",
        path,
        reason,
        extra={"account_sid": account_sid, "sid": params.get("MessageSid")},
    )
    return None
