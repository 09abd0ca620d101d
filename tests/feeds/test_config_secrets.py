"""The configuration view opens sealed auth tokens; what it cannot open stays out of use."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from feeds.config import ConfigView
from feeds.secret_box import SecretBox, new_key
from schemas.config import ConfigChange, SealedSubaccount, Subaccount
from tests.streams.factories import sealed

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SID_A, SID_B = "AC" + "a" * 32, "AC" + "b" * 32
TOKEN_A, TOKEN_B = "token-a-0123456789abcdef01234567", "token-b-0123456789abcdef01234567"


def account(sid: str, token: str) -> Subaccount:
    return Subaccount(account_sid=sid, auth_token=token, created_at=NOW, updated_at=NOW)


def record(entity: SealedSubaccount) -> bytes:
    return ConfigChange(entity=entity).model_dump_json().encode()


def plaintext_record(sid: str, token: str) -> bytes:
    """A record as written before tokens were sealed (the old shape of the value)."""
    entity = {**account(sid, token).model_dump(mode="json"), "kind": "subaccount"}
    return json.dumps({"entity": entity}).encode()


def test_a_sealed_record_carries_no_token_and_opens_in_memory() -> None:
    box = SecretBox([new_key()])
    value = record(sealed(account(SID_A, TOKEN_A), box))
    assert TOKEN_A.encode() not in value
    view = ConfigView(box)
    view.apply(f"subaccount:{SID_A}", value, 0)
    assert view.subaccounts[SID_A].auth_token == TOKEN_A
    assert TOKEN_A not in repr(view.subaccounts[SID_A])


def test_a_sealed_subaccount_never_serializes_a_clear_token() -> None:
    entity = SealedSubaccount(
        account_sid=SID_A, sealed_auth_token="x", auth_token=TOKEN_A,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    assert TOKEN_A not in ConfigChange(entity=entity).model_dump_json()


def test_a_record_written_in_clear_is_read_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="feeds.config")
    view = ConfigView(SecretBox([new_key()]))
    for offset in range(3):
        view.apply(f"subaccount:{SID_A}", plaintext_record(SID_A, TOKEN_A), offset)
    assert view.subaccounts[SID_A].auth_token == TOKEN_A
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and SID_A in lines[0] and "rotate" in lines[0]
    assert TOKEN_A not in caplog.text


def test_a_record_no_key_opens_is_undecryptable_and_the_others_are_unaffected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="feeds.config")
    lost, kept = SecretBox([new_key()]), SecretBox([new_key()])
    view = ConfigView(kept)
    view.apply(f"subaccount:{SID_A}", record(sealed(account(SID_A, TOKEN_A), lost)), 0)
    view.apply(f"subaccount:{SID_B}", record(sealed(account(SID_B, TOKEN_B), kept)), 1)
    assert SID_A not in view.subaccounts and set(view.undecryptable) == {SID_A}
    assert view.subaccounts[SID_B].auth_token == TOKEN_B
    assert any(SID_A in r.getMessage() and "SMSLANE_SECRET_KEYS" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert TOKEN_A not in caplog.text
    # Putting the token again (sealed with a key the view has) makes it usable.
    view.apply(f"subaccount:{SID_A}", record(sealed(account(SID_A, TOKEN_A), kept)), 2)
    assert not view.undecryptable and view.subaccounts[SID_A].auth_token == TOKEN_A


def test_deleting_an_undecryptable_subaccount_forgets_it() -> None:
    view = ConfigView(SecretBox([new_key()]))
    view.apply(f"subaccount:{SID_A}", record(sealed(account(SID_A, TOKEN_A))), 0)
    assert set(view.undecryptable) == {SID_A}
    view.apply(f"subaccount:{SID_A}", None, 1)
    assert not view.undecryptable
