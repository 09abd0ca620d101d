"""The live view's bookkeeping and the welcome block's curl, without any process."""

from __future__ import annotations

import io
import shlex
from pathlib import Path
from typing import Any

import pytest

from smslane import up
from smslane.live import Change, LiveView, MessageFeed, Row, merge, render


def item(record_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "message_sid": f"SM{record_id}",
        "to_number": "+14155550123",
        "status": status,
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:01Z",
        **fields,
    }


def test_merge_reports_new_messages_and_status_changes_oldest_first() -> None:
    rows: dict[str, Row] = {}
    first = merge(rows, [item("b", "pending"), item("a", "sent")])
    assert [(c.row.id, c.previous, c.row.status) for c in first] == [
        ("a", None, "sent"),
        ("b", None, "pending"),
    ]
    assert merge(rows, [item("b", "pending"), item("a", "sent")]) == []
    later = merge(rows, [item("c", "pending"), item("b", "delivered"), item("a", "sent")])
    assert [(c.row.id, c.previous, c.row.status) for c in later] == [
        ("b", "pending", "delivered"),
        ("c", None, "pending"),
    ]
    assert list(rows) == ["c", "b", "a"]  # newest first, as the API answers
    assert rows["b"].history == ["pending", "delivered"]


def test_merge_forgets_messages_that_left_the_page() -> None:
    rows: dict[str, Row] = {}
    merge(rows, [item("a", "pending")])
    merge(rows, [item("b", "pending")])
    assert list(rows) == ["b"]


def test_change_line_is_one_plain_line() -> None:
    row = Row("id1", "SM1", "+14155550123", "delivered", "", "", ["sent", "delivered"])
    assert Change(row, "sent").line() == "sms id1 SM1 to +14155550123: sent -> delivered"
    assert Change(row, None).line() == "sms id1 SM1 to +14155550123: delivered"


class _Feed(MessageFeed):
    """A feed whose pages come from a list instead of the API."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        super().__init__("http://127.0.0.1:9", "key")
        self.pages = pages

    def poll(self) -> list[Change]:
        changes = merge(self.rows, self.pages.pop(0))
        first, self.polled = not self.polled, True
        return [] if first else changes


def test_without_a_tty_the_view_prints_status_changes_after_the_baseline() -> None:
    out = io.StringIO()
    feed = _Feed([[item("old", "delivered")], [item("new", "pending"), item("old", "delivered")],
                  [item("new", "sent"), item("old", "delivered")]])  # fmt: skip
    with LiveView(feed, out) as view:
        assert not view.tty
        for _ in range(3):
            view.refresh()
    assert out.getvalue().splitlines() == [
        "sms new SMnew to +14155550123: pending",
        "sms new SMnew to +14155550123: pending -> sent",
    ]


def test_the_table_shows_each_message_with_its_history() -> None:
    feed = _Feed([])
    merge(feed.rows, [item("a", "pending")])
    merge(feed.rows, [item("a", "delivered")])
    table = render(feed)
    assert [c.header for c in table.columns] == [
        "created", "to", "message_sid", "status", "changes", "updated",
    ]  # fmt: skip
    assert table.row_count == 1
    assert "pending → delivered" in list(table.columns[4].cells)


def test_a_feed_without_an_api_reports_the_error_and_no_change() -> None:
    feed = MessageFeed("http://127.0.0.1:9", "key")  # nothing listens on port 9
    try:
        assert feed.poll() == []
        assert feed.error is not None
    finally:
        feed.close()


@pytest.mark.parametrize("api_key", ["dev_abc-DEF_123", 'it\'s a "key" $HOME'])
def test_the_printed_curl_survives_the_shell_whatever_the_key(
    api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    up._print_welcome("http://127.0.0.1:8000", api_key, "admin", "uc-id", Path("/tmp"), "off")
    out = capsys.readouterr().out
    start = out.index("curl -s -X POST")
    command = out[start : out.index("\n\n", start)].replace("\\\n", " ")
    words = shlex.split(command)
    assert words[words.index("-H") + 1] == f"Authorization: Bearer {api_key}"
    body = words[words.index("-d") + 1]
    assert '"use_case_id": "uc-id"' in body and '"to_phone_number": "+14155550123"' in body
