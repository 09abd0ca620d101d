"""Sender selection: sticky sender, area-code and country geomatch, round-robin."""

from __future__ import annotations

from twilio_sim.senders import SenderSelector

SERVICE = "MG" + "1" * 32
POOL = ["+14155550100", "+14155550101", "+12125550100", "+447700900100"]


def test_area_code_geomatch_prefers_the_recipients_area_code() -> None:
    selector = SenderSelector({SERVICE: POOL})
    assert selector.choose(SERVICE, "+12125559999") == "+12125550100"
    assert selector.choose(SERVICE, "+14155559998") in {"+14155550100", "+14155550101"}


def test_same_area_code_candidates_are_used_in_turn() -> None:
    selector = SenderSelector({SERVICE: POOL})
    chosen = {selector.choose(SERVICE, f"+1415555{n:04d}") for n in range(4)}
    assert chosen == {"+14155550100", "+14155550101"}


def test_sticky_sender_keeps_the_first_choice_for_a_recipient() -> None:
    selector = SenderSelector({SERVICE: POOL})
    first = selector.choose(SERVICE, "+13125550000")  # no 312 number: any US number
    assert first.startswith("+1")
    assert {selector.choose(SERVICE, "+13125550000") for _ in range(5)} == {first}


def test_country_geomatch_then_us_fallback() -> None:
    selector = SenderSelector({SERVICE: POOL})
    assert selector.choose(SERVICE, "+447911123456") == "+447700900100"
    assert selector.choose(SERVICE, "+33612345678").startswith("+1")


def test_sticky_mapping_dropped_when_the_sender_leaves_the_pool() -> None:
    selector = SenderSelector({SERVICE: POOL})
    assert selector.choose(SERVICE, "+12125559999") == "+12125550100"
    selector.configure({SERVICE: ["+14155550100"]})
    assert selector.choose(SERVICE, "+12125559999") == "+14155550100"


def test_forget_clears_sticky_mappings_and_unknown_services() -> None:
    selector = SenderSelector({SERVICE: POOL, "MGempty": []})
    assert selector.knows(SERVICE)
    assert not selector.knows("MG" + "9" * 32)
    assert selector.is_empty("MGempty")
    first = selector.choose(SERVICE, "+13125550000")
    selector.forget()
    assert selector.choose(SERVICE, "+13125550000") != first  # round-robin moved on
