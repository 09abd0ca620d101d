"""``send_at``'s form and window, and what the Idempotency-Key comparison compares."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ingress.routes_sms import SendSmsBody, body_hash
from schemas.scheduling import MAX_AHEAD, MIN_AHEAD, parse_send_at, window_problem

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
USE_CASE = uuid.UUID("0b6f3c1e-7d2a-4f5e-9c1b-2a3d4e5f6a7b")


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-12-07T10:30:00Z", datetime(2026, 12, 7, 10, 30, tzinfo=UTC)),
        ("2026-12-07t12:30:00+02:00", datetime(2026, 12, 7, 10, 30, tzinfo=UTC)),
        ("2026-12-07T05:30:00.25-05:00", datetime(2026, 12, 7, 10, 30, 0, 250000, tzinfo=UTC)),
        ("2026-12-07T10:30:00.123456789Z", datetime(2026, 12, 7, 10, 30, 0, 123456, tzinfo=UTC)),
    ],
)
def test_send_at_is_read_in_utc(text: str, instant: datetime) -> None:
    parsed = parse_send_at(text)
    assert parsed == instant and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    ["2026-12-07T10:30:00", "2026-12-07", "1765103400", "2026-W50-1T10:30:00Z",
     "2026-13-07T10:30:00Z", "2026-12-07T10:30Z", "tomorrow"],
)  # fmt: skip
def test_send_at_without_an_offset_or_not_rfc3339_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_send_at(text)


def test_the_window_is_15_minutes_to_35_days() -> None:
    assert window_problem(NOW + MIN_AHEAD, NOW) is None
    assert window_problem(NOW + MAX_AHEAD, NOW) is None
    for outside in (NOW - timedelta(hours=1), NOW + MIN_AHEAD - timedelta(seconds=1),
                    NOW + MAX_AHEAD + timedelta(seconds=1)):  # fmt: skip
        problem = window_problem(outside, NOW)
        assert problem is not None and "between 15 minutes and 35 days" in problem


def body(**fields: object) -> SendSmsBody:
    return SendSmsBody.model_validate(
        {"use_case_id": str(USE_CASE), "to_phone_number": "+14155550123", "message": "hi",
         **fields}
    )  # fmt: skip


def test_a_body_without_the_new_fields_hashes_as_before() -> None:
    old = hashlib.sha256(f"{USE_CASE}\n+14155550123\nhi".encode()).hexdigest()
    assert body_hash(body()) == old


def test_send_at_compares_as_an_instant() -> None:
    assert body_hash(body(send_at="2026-12-08T10:00:00Z")) == body_hash(
        body(send_at="2026-12-08T11:00:00+01:00")
    )
    assert body_hash(body(send_at="2026-12-08T10:00:00Z")) != body_hash(
        body(send_at="2026-12-08T10:00:01Z")
    )


@pytest.mark.parametrize(
    "fields",
    [{"send_at": "2026-12-08T10:00:00Z"}, {"validity_period": 60},
     {"client_reference": "order-1"}, {"client_reference": "order-2"}],
)  # fmt: skip
def test_each_new_field_counts(fields: dict[str, object]) -> None:
    assert body_hash(body(**fields)) != body_hash(body())
    assert body_hash(body(**fields)) != body_hash(body(client_reference="order-0"))
