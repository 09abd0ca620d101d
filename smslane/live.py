"""The live view of ``smslane up --demo``: recent messages and their status changes.

The source is the public API, ``GET /v1/sms/?limit=20`` polled about twice a second with the
development key, so the view shows exactly what a client of smslane would see. On a terminal
it is a table redrawn in place (``rich.live.Live``); otherwise (a pipe, a CI log) it prints
one plain line per status change, so that logs stay readable.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

LIMIT = 20
POLL_INTERVAL_S = 0.5

_STYLE = {
    "scheduled": "magenta",
    "canceled": "dim",
    "pending": "yellow",
    "sent": "cyan",
    "delivered": "bold green",
    "undelivered": "bold red",
    "failed": "bold red",
}


@dataclass
class Row:
    """One message as last seen, with every status it was seen in, oldest first."""

    id: str
    message_sid: str
    to_number: str
    status: str
    created_at: str
    updated_at: str
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """A message seen for the first time (``previous`` is None) or in a new status."""

    row: Row
    previous: str | None

    def line(self) -> str:
        """The plain-text form: ``sms <id> <sid> to <number>: <previous> -> <status>``."""
        transition = self.row.status if self.previous is None else (
            f"{self.previous} -> {self.row.status}"
        )  # fmt: skip
        return f"sms {self.row.id} {self.row.message_sid} to {self.row.to_number}: {transition}"


def merge(rows: dict[str, Row], items: list[dict[str, Any]]) -> list[Change]:
    """Fold a page of the API (newest first) into ``rows``; the changes, oldest first.

    ``rows`` keeps only the page's messages, in the page's order.
    """
    changes: list[Change] = []
    for item in reversed(items):
        record_id, status = str(item["id"]), str(item["status"])
        row = rows.get(record_id)
        if row is None:
            row = Row(
                id=record_id,
                message_sid=str(item.get("message_sid") or ""),
                to_number=str(item.get("to_number") or ""),
                status=status,
                created_at=str(item.get("created_at") or ""),
                updated_at=str(item.get("updated_at") or ""),
                history=[status],
            )
            changes.append(Change(row, None))
        elif row.status != status:
            previous = row.status
            row.status, row.updated_at = status, str(item.get("updated_at") or "")
            row.history.append(status)
            changes.append(Change(row, previous))
        rows[record_id] = row
    order = [str(item["id"]) for item in items]
    kept = {record_id: rows[record_id] for record_id in order}
    rows.clear()
    rows.update(kept)
    return changes


class MessageFeed:
    """Polls the newest messages from the API and reports what changed since last time."""

    def __init__(self, base_url: str, api_key: str, *, limit: int = LIMIT) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=2.0
        )
        self.limit = limit
        self.rows: dict[str, Row] = {}
        self.error: str | None = None
        self.polled = False

    def poll(self) -> list[Change]:
        """One request; the changes it reveals (none on the first poll: that is the baseline)."""
        try:
            answer = self.client.get("/v1/sms/", params={"limit": self.limit})
            answer.raise_for_status()
            items = list(answer.json()["items"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.error = f"the API did not answer ({type(exc).__name__})"
            return []
        self.error = None
        changes = merge(self.rows, items)
        first, self.polled = not self.polled, True
        return [] if first else changes

    def close(self) -> None:
        self.client.close()


def _clock(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return stamp


def render(feed: MessageFeed) -> Table:
    """The table of the feed's rows, newest first."""
    table = Table(
        title=f"Recent messages (GET /v1/sms/?limit={feed.limit}, every {POLL_INTERVAL_S:g} s)",
        caption=feed.error
        or "Status changes appear as Twilio's callbacks arrive. Ctrl-C stops everything.",
        expand=False,
    )
    for name in ("created", "to", "message_sid", "status", "changes", "updated"):
        table.add_column(name, no_wrap=True)
    if not feed.rows:
        table.add_row("", "no messages yet: run the curl above", "", "", "", "")
    for row in feed.rows.values():
        table.add_row(
            _clock(row.created_at),
            row.to_number,
            row.message_sid,
            Text(row.status, style=_STYLE.get(row.status, "")),
            " → ".join(row.history),
            _clock(row.updated_at),
        )
    return table


class LiveView:
    """A rich ``Live`` table on a terminal; plain lines for status changes otherwise."""

    def __init__(self, feed: MessageFeed, out: TextIO | None = None) -> None:
        self.feed = feed
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.live: Live | None = None

    def __enter__(self) -> LiveView:
        if self.tty:
            console = Console(file=self.out)
            self.live = Live(render(self.feed), console=console, auto_refresh=False)
            self.live.start(refresh=True)
        return self

    def refresh(self) -> None:
        """Poll once and show the result."""
        changes = self.feed.poll()
        if self.live is not None:
            self.live.update(render(self.feed), refresh=True)
            return
        for change in changes:
            self.out.write(change.line() + "\n")
        if changes:
            self.out.flush()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.stop()
        self.feed.close()
