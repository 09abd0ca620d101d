"""Keyword matching and the opt-out changes a keyword makes: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from ingress.keywords import Keyword, match_keyword, opt_out_changes
from schemas.config import A2pCampaignStatus, OptOut, OptOutSource, UseCase, opt_out_key
from schemas.inbound import KeywordAction

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PERSON = "+14155550199"


def use_case() -> UseCase:
    return UseCase(
        id=uuid.uuid4(), name="n", account_sid="AC1", messaging_service_sid="MG1",
        brand_id="b", a2p_campaign_status=A2pCampaignStatus.VERIFIED, permitted_regions=("US",),
        active=True, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def opt_out(case: UseCase, source: OptOutSource) -> OptOut:
    return OptOut(use_case_id=case.id, phone_number=PERSON, source=source, created_at=NOW)


@pytest.mark.parametrize(
    "body", ["STOP", "stop", " Stop\n", "STOPALL", "unsubscribe", "Cancel", "END", "quit",
             "REVOKE", "optout"],
)  # fmt: skip
def test_opt_out_keywords(body: str) -> None:
    assert match_keyword(body) == Keyword(body.strip().upper(), KeywordAction.OPT_OUT)


@pytest.mark.parametrize("body", ["START", "yes", " Unstop "])
def test_opt_in_keywords(body: str) -> None:
    assert match_keyword(body) == Keyword(body.strip().upper(), KeywordAction.OPT_IN)


@pytest.mark.parametrize("body", ["HELP", "info"])
def test_help_keywords(body: str) -> None:
    assert match_keyword(body) == Keyword(body.upper(), KeywordAction.HELP)


@pytest.mark.parametrize("body", ["stop it", "STOP!", "please stop", "", "  ", "startup", "no"])
def test_only_the_whole_message_is_a_keyword(body: str) -> None:
    assert match_keyword(body) is None


def test_twilios_opt_out_type_decides_for_custom_keywords() -> None:
    assert match_keyword("ARRET", "STOP") == Keyword("ARRET", KeywordAction.OPT_OUT)
    assert match_keyword("go on", "start") == Keyword("GO ON", KeywordAction.OPT_IN)
    assert match_keyword("STOP", "HELP") == Keyword("STOP", KeywordAction.OPT_OUT)
    assert match_keyword("hello", "HELP") is None
    assert match_keyword("", "STOP") == Keyword("STOP", KeywordAction.OPT_OUT)


def test_opt_out_sets_a_keyword_opt_out_on_every_use_case() -> None:
    cases = [use_case(), use_case()]
    changes = opt_out_changes(match_keyword("quit"), PERSON, cases, lambda *_: {}, NOW)
    assert changes.delete == []
    assert [(o.use_case_id, o.source, o.keyword) for o in changes.put] == [
        (case.id, OptOutSource.KEYWORD, "QUIT") for case in cases
    ]
    assert all(o.phone_number == PERSON and o.created_at == NOW for o in changes.put)


def test_opt_out_rewrites_a_held_keyword_opt_out_as_it_is_and_adds_beside_others() -> None:
    """The view may be stale (another ingress's START tombstone not read yet): the keyword
    opt-out is written even when held, unchanged (same key, same ``created_at``), so a
    retried webhook writes the same record and a stale view cannot leave the person in."""
    case, other = use_case(), use_case()
    earlier = opt_out(case, OptOutSource.KEYWORD).model_copy(
        update={"created_at": datetime(2026, 11, 1, tzinfo=UTC), "keyword": "STOP"}
    )
    held = {
        case.id: {OptOutSource.KEYWORD: earlier},
        other.id: {OptOutSource.ADMIN: opt_out(other, OptOutSource.ADMIN)},
    }
    changes = opt_out_changes(
        match_keyword("QUIT"), PERSON, [case, other], lambda uc, _: held[uc], NOW
    )
    assert [o.use_case_id for o in changes.put] == [case.id, other.id]
    assert changes.put[0] == earlier
    assert (changes.put[1].source, changes.put[1].keyword) == (OptOutSource.KEYWORD, "QUIT")


@pytest.mark.parametrize("held_sources", [set(OptOutSource), set()], ids=["held", "not seen"])
def test_opt_in_clears_keyword_and_21610_opt_outs_but_not_the_admins(
    held_sources: set[OptOutSource],
) -> None:
    cases = [use_case(), use_case()]
    held = {source: opt_out(cases[0], source) for source in held_sources}
    changes = opt_out_changes(match_keyword("START"), PERSON, cases, lambda *_: held, NOW)
    assert changes.put == []
    assert changes.delete == [
        opt_out_key(case.id, PERSON, source)
        for case in cases
        for source in (OptOutSource.KEYWORD, OptOutSource.TWILIO_21610)
    ]


@pytest.mark.parametrize("body", ["HELP", "info", "hello there"])
def test_help_and_other_messages_change_nothing(body: str) -> None:
    case = use_case()
    held = {source: opt_out(case, source) for source in OptOutSource}
    assert not opt_out_changes(match_keyword(body), PERSON, [case], lambda *_: held, NOW)


def test_no_use_case_no_change() -> None:
    assert not opt_out_changes(match_keyword("STOP"), PERSON, [], lambda *_: {}, NOW)


def test_opt_out_keys_keep_the_admin_key_and_add_the_source_for_others() -> None:
    case = use_case()
    assert opt_out_key(case.id, PERSON, OptOutSource.ADMIN) == f"opt_out:{case.id}:{PERSON}"
    assert opt_out_key(case.id, PERSON, OptOutSource.KEYWORD).endswith(f"{PERSON}:keyword")
