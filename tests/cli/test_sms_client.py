"""The pure parts of `smslane sms`: which ingress and key, error lines, tail lines (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from schemas.records import SmsStatus, SmsStatusEvent
from schemas.settings import Settings
from smslane.sms_cli import ClientError, error_line, ingress_of
from smslane.sms_tail import StatusChanges, status_line

RECORD_ID = uuid.UUID("5b0c6a2e-1f7d-4c1b-9d8e-3a2b1c0d9e8f")
CREATED = datetime(2026, 11, 26, 10, 0, 0, 812000, tzinfo=UTC)


def event(version: int, status: SmsStatus, **fields: object) -> SmsStatusEvent:
    values: dict[str, object] = {
        "id": RECORD_ID, "use_case_id": uuid.uuid4(), "message_sid": "SM1",
        "to_number": "+14155550123", "body": "Hi", "status": status,
        "created_at": CREATED, "updated_at": CREATED + timedelta(seconds=version),
        "version": version, **fields,
    }  # fmt: skip
    return SmsStatusEvent.model_validate(values)


def test_a_tail_line_is_time_id_status_to_and_error_code() -> None:
    east = timezone(timedelta(hours=2))
    line = status_line(
        event(4, SmsStatus.UNDELIVERED, error_code=30003,
              updated_at=datetime(2026, 11, 26, 12, 0, 3, 911000, tzinfo=east))
    )  # fmt: skip
    assert line.split() == [
        "2026-11-26T10:00:03.911Z", str(RECORD_ID), "undelivered", "+14155550123", "30003",
    ]  # fmt: skip
    assert status_line(event(1, SmsStatus.PENDING)).split()[-1] == "-"


def test_only_newer_versions_that_change_the_status_print() -> None:
    changes = StatusChanges()
    printed = [
        changes.apply(e)
        for e in (
            event(1, SmsStatus.PENDING),
            event(2, SmsStatus.PENDING, from_number="+14155550100"),  # same status
            event(3, SmsStatus.SENT),
            event(3, SmsStatus.SENT),  # redelivered
            event(2, SmsStatus.PENDING),  # redelivered, older
            event(4, SmsStatus.DELIVERED),
        )
    ]
    assert printed == [True, False, True, False, False, True]


def test_a_tail_started_midway_prints_the_first_value_it_reads() -> None:
    assert StatusChanges().apply(event(3, SmsStatus.SENT))


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSLANE_API_KEY", raising=False)


def test_the_key_comes_from_the_option_then_smslane_api_key_then_api_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(api_keys=("first", "second"), public_base_url="http://h:1/")
    assert ingress_of(settings, None, None).api_key == "first"
    assert ingress_of(settings, None, None).url == "http://h:1"
    monkeypatch.setenv("SMSLANE_API_KEY", "from-env")
    assert ingress_of(settings, None, None).api_key == "from-env"
    assert ingress_of(settings, "http://other:2", "given").api_key == "given"
    assert ingress_of(settings, "http://other:2", "given").url == "http://other:2"


def test_no_key_at_all_is_explained() -> None:
    with pytest.raises(ClientError, match="--api-key"):
        ingress_of(Settings(), None, None)


def test_error_lines_are_code_and_detail() -> None:
    ours = httpx.Response(404, json={"detail": "No SMS use case.", "code": "use_case_not_found"})
    assert error_line(ours) == "use_case_not_found: No SMS use case."
    assert error_line(httpx.Response(502, text="Bad gateway\n")) == "http_502: Bad gateway"
    busy = httpx.Response(
        503, headers={"Retry-After": "1"}, json={"detail": "Busy.", "code": "service_unavailable"}
    )
    assert error_line(busy) == "service_unavailable: Busy. (retry after 1 s)"
