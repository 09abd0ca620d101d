"""Opt-out and opt-in keywords of inbound SMS, and the opt-out changes they make. No I/O.

A keyword is the whole message, trimmed, in any case (``" stop "`` is one, ``"stop it"`` is
not). Twilio's ``OptOutType`` field (sent with Advanced Opt-Out) counts as well:
``STOP`` and ``START`` act like an opt-out and an opt-in keyword.

- Opt-out: the sender is opted out of every use case of the Messaging Service (source
  ``keyword``). The record is always written, even when this view holds it already: the
  view may not have read another ingress's opt-in tombstone yet, and a write skipped on
  it would leave the person opted in. One this view holds is written as it is (its
  ``created_at`` too), so a webhook Twilio retries writes the same record again.
- Opt-in: the sender's opt-outs of source ``keyword`` or ``twilio_21610`` on those use cases
  are removed (deleted by key, whether this view holds them or not); ``admin`` ones stay
  until the admin API removes them.
- ``HELP``, ``INFO`` and everything else change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from schemas.config import OptOut, OptOutSource, UseCase, opt_out_key
from schemas.inbound import KeywordAction

OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
#: The opt-outs an opt-in keyword removes (an admin's stays).
CLEARED_BY_OPT_IN = (OptOutSource.KEYWORD, OptOutSource.TWILIO_21610)

_OPT_OUT_TYPES = {"STOP": KeywordAction.OPT_OUT, "START": KeywordAction.OPT_IN}


#: The longest keyword kept (a custom one Twilio matched may be long; the rest is dropped).
MAX_KEYWORD_CHARS = 64


@dataclass(frozen=True, slots=True)
class Keyword:
    """A matched keyword: the word as texted (upper case, at most
    :data:`MAX_KEYWORD_CHARS`) and what it does."""

    word: str
    action: KeywordAction


def match_keyword(body: str, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword ``body`` is, or None. ``opt_out_type`` is Twilio's ``OptOutType`` field:
    ``STOP`` or ``START`` decides the action even for a word smslane does not list (an
    operator's custom keyword at Twilio); ``HELP`` or another value decides nothing."""
    word = body.strip().upper()
    by_twilio = _OPT_OUT_TYPES.get((opt_out_type or "").strip().upper())
    if by_twilio is not None:
        word = word or (opt_out_type or "").strip().upper()
        return Keyword(word[:MAX_KEYWORD_CHARS], by_twilio)
    if word in OPT_OUT_KEYWORDS:
        return Keyword(word, KeywordAction.OPT_OUT)
    if word in OPT_IN_KEYWORDS:
        return Keyword(word, KeywordAction.OPT_IN)
    if word in HELP_KEYWORDS:
        return Keyword(word, KeywordAction.HELP)
    return None


@dataclass(frozen=True)
class OptOutChanges:
    """What to write to the config topic: opt-outs to put, keys to delete (tombstones)."""

    put: list[OptOut] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.put or self.delete)


#: The opt-outs a number has on a use case, by source (``ConfigView.number_opt_outs``).
ExistingOptOuts = Callable[[UUID, str], Mapping[OptOutSource, OptOut]]


def opt_out_changes(
    keyword: Keyword | None,
    from_number: str,
    use_cases: Iterable[UseCase],
    existing: ExistingOptOuts,
    now: datetime,
) -> OptOutChanges:
    """The config changes ``keyword``, texted by ``from_number``, makes on ``use_cases``."""
    if keyword is None or keyword.action is KeywordAction.HELP:
        return OptOutChanges()
    changes = OptOutChanges()
    for use_case in use_cases:
        if keyword.action is KeywordAction.OPT_OUT:
            held = existing(use_case.id, from_number).get(OptOutSource.KEYWORD)
            changes.put.append(held or _keyword_opt_out(use_case.id, from_number, keyword, now))
            continue
        # Every key, held here or not: a 21610 opt-out the worker wrote a moment ago may not
        # be in this view yet, and the tombstone lands after it on the one-partition topic.
        for source in CLEARED_BY_OPT_IN:
            changes.delete.append(opt_out_key(use_case.id, from_number, source))
    return changes


def _keyword_opt_out(use_case_id: UUID, number: str, keyword: Keyword, now: datetime) -> OptOut:
    return OptOut(
        use_case_id=use_case_id,
        phone_number=number,
        source=OptOutSource.KEYWORD,
        keyword=keyword.word,
        created_at=now,
    )
