"""The Messages list call: Twilio's filters and paging over the stored messages. Pure.

``GET .../Messages.json`` takes ``To``, ``From``, ``DateSent``, ``DateSent<`` (on or before),
``DateSent>`` (on or after), ``PageSize`` (default 50, at most 1000), ``Page`` and
``PageToken``, and answers messages newest first with Twilio's paging keys. A ``DateSent``
value is a GMT date ``YYYY-MM-DD`` (the whole day) or an ISO 8601 datetime such as
``2026-12-01T20:00:00Z`` (that second), as twilio-python sends it; a message not sent yet
(``date_sent`` null) matches no ``DateSent`` filter.

Page tokens are Twilio-shaped: ``PA`` + the SID of the last message of a page (the next page
holds older messages), ``PB`` + the SID of the first one (the previous page, newer ones). A
token names a position, so a page stays put while new messages arrive; a SID the store no
longer holds sits below every remembered message (it was evicted, or forgotten by a reset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

from twilio_sim.errors import TwilioError
from twilio_sim.models import SimMessage

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
FILTER_KEYS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
"""The filters, in the order Twilio writes them into its page URIs."""

_DAY_SECONDS = 86_400
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class SentRange:
    """Inclusive bounds on ``date_sent`` in whole seconds since the epoch (``None``: open)."""

    low: int | None = None
    high: int | None = None

    def admits(self, sent: float | None) -> bool:
        """Whether a message sent at ``sent`` (``None``: not sent) falls in the range."""
        if sent is None:
            return False
        second = int(sent)
        if self.low is not None and second < self.low:
            return False
        return self.high is None or second <= self.high


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list call's filters and paging, validated."""

    filters: tuple[tuple[str, str], ...]
    """The filters as given (``FILTER_KEYS`` order), repeated in the page URIs."""
    to: str | None
    from_: str | None
    sent: SentRange | None
    page_size: int
    page: int
    token: str | None
    """``PageToken`` as given."""


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a list call: its messages and whether there are more on either side."""

    messages: list[SimMessage]
    """Newest first."""
    has_older: bool
    has_newer: bool


def invalid_date() -> TwilioError:
    """20001, as Twilio answers a ``DateSent`` it cannot read."""
    return TwilioError(400, 20001, "Invalid date value.")


def invalid_paging(name: str) -> TwilioError:
    """20001 for a ``PageSize``, ``Page`` or ``PageToken`` the simulator cannot read."""
    return TwilioError(400, 20001, f"Invalid {name}")


def instant_range(value: str) -> tuple[int, int] | None:
    """The seconds a ``DateSent`` value covers: a whole GMT day for ``YYYY-MM-DD``, one
    second for a datetime (no offset: GMT); ``None`` when it is neither."""
    value = value.strip()
    try:
        if _DATE.match(value):
            start = datetime.combine(date.fromisoformat(value), time(), UTC)
            first = int(start.timestamp())
            return first, first + _DAY_SECONDS - 1
        if "T" not in value:
            return None
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    second = int(moment.timestamp() // 1)
    return second, second


def _sent_range(params: Mapping[str, str]) -> SentRange | TwilioError | None:
    low: int | None = None
    high: int | None = None
    for key, take_low, take_high in (
        ("DateSent", True, True),
        ("DateSent>", True, False),
        ("DateSent<", False, True),
    ):
        if key not in params:
            continue
        bounds = instant_range(params[key])
        if bounds is None:
            return invalid_date()
        if take_low:
            low = bounds[0] if low is None else max(low, bounds[0])
        if take_high:
            high = bounds[1] if high is None else min(high, bounds[1])
    if low is None and high is None:
        return None
    return SentRange(low, high)


def _integer(params: Mapping[str, str], key: str, default: int, minimum: int) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= minimum else None


def parse_query(params: Mapping[str, str]) -> ListQuery | TwilioError:
    """Read a list call's query string (unknown keys are ignored, as Twilio does).

    ``PageSize`` above 1000 is clamped to 1000.
    """
    sent = _sent_range(params)
    if isinstance(sent, TwilioError):
        return sent
    page_size = _integer(params, "PageSize", DEFAULT_PAGE_SIZE, 1)
    if page_size is None:
        return invalid_paging("PageSize")
    page = _integer(params, "Page", 0, 0)
    if page is None:
        return invalid_paging("Page")
    token = params.get("PageToken") or None
    if token is not None and token[:2] not in ("PA", "PB"):
        return invalid_paging("PageToken")
    return ListQuery(
        filters=tuple((key, params[key]) for key in FILTER_KEYS if key in params),
        to=params.get("To"),
        from_=params.get("From"),
        sent=sent,
        page_size=min(page_size, MAX_PAGE_SIZE),
        page=page,
        token=token,
    )


def _matches(query: ListQuery, account_sid: str) -> Callable[[SimMessage], bool]:
    def match(message: SimMessage) -> bool:
        return (
            message.account_sid == account_sid
            and (query.to is None or message.to == query.to)
            and (query.from_ is None or message.shown_from() == query.from_)
            and (query.sent is None or query.sent.admits(message.sent))
        )

    return match


def select_page(
    messages: Sequence[SimMessage],
    account_sid: str,
    query: ListQuery,
    anchor_seq: int | None,
) -> ListPage:
    """The page ``query`` asks for among ``messages`` (oldest first, as stored).

    ``anchor_seq`` is the ``seq`` of the message the page token names (``-1`` when the store
    no longer holds it); without a token the page starts at ``Page * PageSize``.
    """
    match = _matches(query, account_sid)
    newest_first = [m for m in reversed(messages) if match(m)]
    size = query.page_size
    if query.token is None or anchor_seq is None:
        start = query.page * size
        chosen = newest_first[start : start + size]
        return ListPage(chosen, len(newest_first) > start + size, start > 0 and bool(chosen))
    if query.token.startswith("PA"):
        older = [m for m in newest_first if m.seq < anchor_seq]
        return ListPage(older[:size], len(older) > size, len(older) < len(newest_first))
    newer = [m for m in newest_first if m.seq > anchor_seq]
    return ListPage(newer[-size:], len(newer) < len(newest_first), len(newer) > size)


def _uri(path: str, query: ListQuery, page: int, token: str | None) -> str:
    params: list[tuple[str, str]] = [
        *query.filters,
        ("PageSize", str(query.page_size)),
        ("Page", str(page)),
    ]
    if token is not None:
        params.append(("PageToken", token))
    return f"{path}?{urlencode(params)}"


def render_page(path: str, query: ListQuery, page: ListPage) -> dict[str, Any]:
    """The list call's JSON: ``messages`` plus Twilio's paging keys (URIs relative to the
    API host, ``next_page_uri`` null on the last page, ``previous_page_uri`` on the first)."""
    messages = page.messages
    start = query.page * query.page_size
    next_uri = previous_uri = None
    if page.has_older and messages:
        next_uri = _uri(path, query, query.page + 1, f"PA{messages[-1].sid}")
    if page.has_newer and messages:
        previous_uri = _uri(path, query, max(query.page - 1, 0), f"PB{messages[0].sid}")
    return {
        "end": start + len(messages) - 1 if messages else start,
        "first_page_uri": _uri(path, query, 0, None),
        "messages": [message.resource() for message in messages],
        "next_page_uri": next_uri,
        "page": query.page,
        "page_size": query.page_size,
        "previous_page_uri": previous_uri,
        "start": start,
        "uri": _uri(path, query, query.page, query.token),
    }
