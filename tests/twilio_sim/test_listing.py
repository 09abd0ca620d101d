"""The list call's pure parts: DateSent values, query validation, page selection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from twilio_sim import Scenario, SimMessage
from twilio_sim.errors import TwilioError
from twilio_sim.listing import (
    ListQuery,
    SentRange,
    instant_range,
    parse_query,
    render_page,
    select_page,
)

AC = "AC" + "1" * 32
DAY = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())


def create_message(seq: int, to: str = "+14155550100", account_sid: str = AC) -> SimMessage:
    return SimMessage(
        sid=f"SM{seq:032x}",
        account_sid=account_sid,
        to=to,
        body="hi",
        messaging_service_sid=None,
        requested_from="+12125550100",
        sender="+12125550100",
        num_segments=1,
        status_callback=None,
        scenario=Scenario.DELIVERED,
        status="delivered",
        created=DAY + seq,
        updated=DAY + seq,
        sent=DAY + seq,
        seq=seq,
    )


def query(**params: str) -> ListQuery:
    parsed = parse_query(params)
    assert isinstance(parsed, ListQuery)
    return parsed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01", (DAY, DAY + 86_399)),
        ("2026-12-01T20:00:00Z", (DAY + 72_000, DAY + 72_000)),
        ("2026-12-01T21:00:00+01:00", (DAY + 72_000, DAY + 72_000)),
        ("2026-12-01T20:00:00", (DAY + 72_000, DAY + 72_000)),  # no offset: GMT
        ("2026-12-01T20:00:00.900Z", (DAY + 72_000, DAY + 72_000)),
        ("20261201", None),
        ("2026-13-01", None),
        (">=2026-12-01", None),
        ("yesterday", None),
    ],
)
def test_instant_range(value: str, expected: tuple[int, int] | None) -> None:
    assert instant_range(value) == expected


def test_sent_bounds_are_inclusive_and_intersected() -> None:
    on_or_after = query(**{"DateSent>": "2026-12-01T20:00:00Z"}).sent
    assert on_or_after == SentRange(DAY + 72_000, None)
    assert on_or_after.admits(DAY + 72_000.7)
    assert not on_or_after.admits(DAY + 71_999.9)
    assert not on_or_after.admits(None)
    on_or_before_day = query(**{"DateSent<": "2026-12-01"}).sent
    assert on_or_before_day == SentRange(None, DAY + 86_399)
    both = query(**{"DateSent>": "2026-12-01", "DateSent<": "2026-12-01T00:00:10Z"}).sent
    assert both == SentRange(DAY, DAY + 10)
    assert query().sent is None


@pytest.mark.parametrize(
    "params",
    [
        {"DateSent": "soon"},
        {"DateSent<": "2026/12/01"},
        {"PageSize": "0"},
        {"PageSize": "ten"},
        {"Page": "-1"},
        {"PageToken": "XX123"},
    ],
)
def test_unreadable_queries_answer_20001(params: dict[str, str]) -> None:
    error = parse_query(params)
    assert isinstance(error, TwilioError)
    assert (error.status, error.code) == (400, 20001)


def test_page_size_defaults_to_50_and_is_clamped_to_1000() -> None:
    assert query().page_size == 50
    assert query(PageSize="5000").page_size == 1000


def test_tokens_page_backwards_and_forwards_around_an_anchor() -> None:
    stored = [create_message(seq) for seq in range(1, 8)]  # oldest first
    first = select_page(stored, AC, query(PageSize="3"), None)
    assert [m.seq for m in first.messages] == [7, 6, 5]
    assert (first.has_older, first.has_newer) == (True, False)
    second = select_page(stored, AC, query(PageSize="3", Page="1", PageToken="PAx"), 5)
    assert [m.seq for m in second.messages] == [4, 3, 2]
    assert (second.has_older, second.has_newer) == (True, True)
    back = select_page(stored, AC, query(PageSize="3", PageToken="PBx"), 4)
    assert [m.seq for m in back.messages] == [7, 6, 5]
    assert (back.has_older, back.has_newer) == (True, False)
    gone = select_page(stored, AC, query(PageSize="3", PageToken="PAx"), -1)
    assert gone.messages == []


def test_filters_and_the_account_select_messages() -> None:
    stored = [
        create_message(1, to="+1"),
        create_message(2, to="+2"),
        create_message(3, to="+1", account_sid="AC" + "9" * 32),
        create_message(4, to="+1"),
    ]
    stored[3].sent = None
    assert [m.seq for m in select_page(stored, AC, query(To="+1"), None).messages] == [4, 1]
    dated = query(To="+1", DateSent="2026-12-01")
    assert [m.seq for m in select_page(stored, AC, dated, None).messages] == [1]
    wrong_from = query(From="+19999999999")
    assert select_page(stored, AC, wrong_from, None).messages == []


def test_render_page_writes_twilio_paging_keys() -> None:
    stored = [create_message(seq) for seq in range(1, 6)]
    params = {"To": "+14155550100", "DateSent>": "2026-12-01", "PageSize": "2"}
    page = select_page(stored, AC, query(**params), None)
    path = f"/2010-04-01/Accounts/{AC}/Messages.json"
    body = render_page(path, query(**params), page)
    filters = "To=%2B14155550100&DateSent%3E=2026-12-01&PageSize=2"
    assert {k: v for k, v in body.items() if k != "messages"} == {
        "end": 1,
        "first_page_uri": f"{path}?{filters}&Page=0",
        "next_page_uri": f"{path}?{filters}&Page=1&PageToken=PA{stored[3].sid}",
        "page": 0,
        "page_size": 2,
        "previous_page_uri": None,
        "start": 0,
        "uri": f"{path}?{filters}&Page=0",
    }
    assert [m["sid"] for m in body["messages"]] == [stored[4].sid, stored[3].sid]
