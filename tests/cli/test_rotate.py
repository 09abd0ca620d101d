"""`smslane secrets rotate`'s plan: which subaccounts get a new record, sealed how (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feeds.secret_box import SecretBox, Undecryptable, new_key
from schemas.config import SealedSubaccount
from smslane.rotate import plan

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def subaccount(
    sid: str, *, sealed: str | None = None, clear: str | None = None
) -> SealedSubaccount:
    return SealedSubaccount(
        account_sid=sid, sealed_auth_token=sealed, auth_token=clear,
        friendly_name="f", created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def test_old_key_and_clear_records_are_sealed_with_the_first_key_only() -> None:
    new, old, lost = new_key(), new_key(), new_key()
    box = SecretBox([new, old])
    live = {
        "AC1": subaccount("AC1", sealed=SecretBox([old]).seal("t1")),
        "AC2": subaccount("AC2", clear="t2"),
        "AC3": subaccount("AC3", sealed=SecretBox([new]).seal("t3")),
        "AC4": subaccount("AC4", sealed=SecretBox([lost]).seal("t4")),
    }
    result, records = plan(box, live)
    assert (result.rotated, result.current, result.undecryptable) == (
        ["AC1", "AC2"], ["AC3"], ["AC4"],
    )  # fmt: skip
    only_new = SecretBox([new])
    for record, token in zip(records, ("t1", "t2"), strict=True):
        assert record.auth_token is None and record.sealed_auth_token is not None
        assert only_new.open(record.sealed_auth_token) == token
        assert (record.friendly_name, record.created_at) == ("f", NOW)
        with pytest.raises(Undecryptable):
            SecretBox([old]).open(record.sealed_auth_token)
    assert plan(SecretBox([new]), {r.account_sid: r for r in records})[1] == []
