"""The webhook signature check alone: no HTTP server, no Kafka, a hand-filled config view."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from feeds.config import ConfigView
from feeds.secret_box import SecretBox, new_key
from ingress.twilio_signature import FormParams, parse_form, signed_urls, verify
from schemas.config import ConfigChange, Subaccount
from schemas.events import RawCallback
from schemas.settings import STATUS_CALLBACK_FRAGMENT, Settings
from tests.streams.factories import TEST_BOX, sealed

ACCOUNT_SID = "AC" + "1" * 32
TOKEN = "unit-test-token-0123456789"
BASE = "https://sms.example.com"
PATH = "/v1/webhook/twilio/sms-status"
BODY = (
    b"AccountSid=" + ACCOUNT_SID.encode() + b"&MessageSid=SM1&MessageStatus=delivered"
    b"&AddOns=b&AddOns=a&Empty="
)


@pytest.fixture
def settings() -> Settings:
    return Settings(public_base_url=BASE)  # type: ignore[call-arg]


def config_with_account() -> ConfigView:
    """A config view that holds the subaccount ``ACCOUNT_SID`` with ``TOKEN``."""
    view = ConfigView(TEST_BOX)
    now = datetime.now(UTC)
    account = Subaccount(account_sid=ACCOUNT_SID, auth_token=TOKEN, created_at=now, updated_at=now)
    view.apply(
        "subaccount:" + ACCOUNT_SID,
        ConfigChange(entity=sealed(account)).model_dump_json().encode(),
        0,
    )
    return view


@pytest.fixture
def config() -> ConfigView:
    return config_with_account()


def form() -> FormParams:
    params = parse_form(BODY)
    assert params is not None
    return params


def sign(url: str, token: str = TOKEN) -> str:
    """As Twilio signs: every value of every key (a MultiDict, as twilio's validator reads)."""
    return str(RequestValidator(token).compute_signature(url, MultiDict(form().multi_items())))


def test_parse_form_keeps_every_value_in_order() -> None:
    params = form()
    assert params.getlist("AddOns") == ["b", "a"]
    assert params["Empty"] == ""
    assert parse_form(b"To=%FF&x=\xff") is None  # not UTF-8: refused, not guessed


def test_a_signature_over_every_value_of_a_repeated_key_is_valid(
    settings: Settings, config: ConfigView
) -> None:
    account = verify(settings, config, PATH, "", form(), sign(BASE + PATH))
    assert account is not None and account.account_sid == ACCOUNT_SID


def test_a_signature_over_one_value_of_a_repeated_key_is_not(
    settings: Settings, config: ConfigView
) -> None:
    last_only = dict(form())  # what a plain dict of the form keeps
    signature = RequestValidator(TOKEN).compute_signature(BASE + PATH, last_only)
    assert verify(settings, config, PATH, "", form(), signature) is None


def test_query_as_received_is_part_of_the_signed_url(
    settings: Settings, config: ConfigView
) -> None:
    query = "tenant=a%20b"
    assert signed_urls(settings, PATH, query)[0] == f"{BASE}{PATH}?{query}"
    assert verify(settings, config, PATH, query, form(), sign(f"{BASE}{PATH}?{query}"))
    assert verify(settings, config, PATH, query, form(), sign(BASE + PATH)) is None


def test_unknown_account_wrong_token_or_no_signature_are_refused_and_logged(
    settings: Settings, config: ConfigView, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingress.twilio_signature")
    assert verify(settings, config, PATH, "", form(), sign(BASE + PATH, "other")) is None
    assert verify(settings, config, PATH, "", form(), "") is None
    stranger = parse_form(BODY.replace(b"1" * 32, b"9" * 32))
    assert stranger is not None
    assert verify(settings, config, PATH, "", stranger, sign(BASE + PATH)) is None
    reasons = [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records]
    assert reasons == ["bad signature", "no signature", "unknown AccountSid"]
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


def test_a_subaccount_whose_token_no_key_opens_is_refused_and_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingress.twilio_signature")
    view = ConfigView(SecretBox([new_key()]))  # not the key the record was sealed with
    now = datetime.now(UTC)
    account = Subaccount(account_sid=ACCOUNT_SID, auth_token=TOKEN, created_at=now, updated_at=now)
    value = ConfigChange(entity=sealed(account)).model_dump_json().encode()
    view.apply("subaccount:" + ACCOUNT_SID, value, 0)
    assert verify(settings, view, PATH, "", form(), sign(BASE + PATH)) is None
    assert "SMSLANE_SECRET_KEYS" in caplog.records[-1].getMessage()
    assert caplog.records[-1].account_sid == ACCOUNT_SID  # type: ignore[attr-defined]
    assert TOKEN not in caplog.text


def test_raw_callback_keeps_the_last_value_and_every_repeated_one() -> None:
    callback = RawCallback.from_form(uuid.uuid4(), datetime.now(UTC), form().multi_items())
    assert callback.params["AddOns"] == "a"
    assert callback.repeated == {"AddOns": ["b", "a"]}
    assert callback.params["MessageStatus"] == "delivered"
    old = RawCallback.model_validate_json(
        callback.model_dump_json(exclude={"repeated"})
    )  # a callback stored before ``repeated`` existed still reads
    assert old.repeated == {} and old.params == callback.params


def test_a_signature_over_the_url_with_the_callback_fragment_is_valid_too(
    settings: Settings, config: ConfigView
) -> None:
    with_fragment = settings.status_callback_with_overrides
    assert with_fragment == f"{BASE}{PATH}#{STATUS_CALLBACK_FRAGMENT}"
    assert signed_urls(settings, PATH, "") == (BASE + PATH, with_fragment)
    assert verify(settings, config, PATH, "", form(), sign(with_fragment)) is not None
    assert verify(settings, config, PATH, "", form(), sign(BASE + PATH)) is not None
    assert verify(settings, config, PATH, "", form(), sign(f"{BASE}{PATH}#rc=5")) is None
    assert verify(settings, config, PATH, "", form(), sign(with_fragment, "other")) is None


@pytest.mark.parametrize("base", [BASE, "http://127.0.0.1:8000", "https://sms.example.com:443"])
@pytest.mark.parametrize("query", ["", "tenant=a%20b", "bodySHA256=0a1b"])
def test_verify_accepts_exactly_what_twilios_validator_accepts(base: str, query: str) -> None:
    """The check builds the signed string itself (once per request, stopping at the first
    URL that matches); it must answer as ``RequestValidator.validate`` over every URL of
    :func:`signed_urls`, for signatures over each URL Twilio may have used."""
    settings = Settings(public_base_url=base)  # type: ignore[call-arg]
    view = config_with_account()
    host = base.split("://", 1)[1].split(":", 1)[0]
    url = f"{base}{PATH}" + (f"?{query}" if query else "")
    tried = {
        url, f"{url}#{STATUS_CALLBACK_FRAGMENT}", url.replace(f"{host}:8000", host),
        url.replace(f"{host}:443", host), url.replace(host, f"{host}:443", 1),
        url.replace(host, f"{host}:80", 1), f"{BASE}/elsewhere", f"{url}#rc=5",
    }  # fmt: skip
    validator = RequestValidator(TOKEN)
    for signed in sorted(tried):
        for params in (form(), parse_form(b"AccountSid=" + ACCOUNT_SID.encode())):
            assert params is not None
            signature = (
                sign(signed)
                if params == form()
                else validator.compute_signature(signed, MultiDict(params.multi_items()))
            )
            expected = any(
                validator.validate(u, MultiDict(params.multi_items()), signature)
                for u in signed_urls(settings, PATH, query)
            )
            assert (verify(settings, view, PATH, query, params, signature) is not None) == (
                expected
            ), signed
