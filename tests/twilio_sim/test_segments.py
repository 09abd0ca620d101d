"""Segment counting: GSM-7 vs UCS-2, single vs concatenated, characters never split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_sim.segments import GSM7_BASIC, GSM7_EXTENSION, count_segments, segment_info


@pytest.mark.parametrize(
    ("body", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM basic table
        ("ж" * 70, "UCS-2", 70, 1),
        ("ж" * 71, "UCS-2", 71, 2),
        ("ж" * 134, "UCS-2", 134, 2),
        ("ж" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "ç", "UCS-2", 70, 1),  # lowercase ç is not GSM (only Ç is)
        ("a" * 70 + "€", "GSM-7", 72, 1),
        ("[" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("[" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "^", "GSM-7", 161, 2),
        ("😀" * 35, "UCS-2", 70, 1),  # a surrogate pair is two UTF-16 code units
        ("😀" * 36, "UCS-2", 72, 2),
        ("", "GSM-7", 0, 1),
    ],
)
def test_boundaries(body: str, encoding: str, units: int, segments: int) -> None:
    info = segment_info(body)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert count_segments(body) == segments


def test_an_escape_sequence_is_not_split_across_segments() -> None:
    # 152 septets, then a 2-septet character that does not fit in segment one's 153.
    assert segment_info("a" * 152 + "{" + "a" * 152).segments == 3
    assert segment_info("a" * 151 + "{" + "a" * 153).segments == 2


def test_a_surrogate_pair_is_not_split_across_segments() -> None:
    assert segment_info("a" * 66 + "😀" + "a" * 66).segments == 3
    assert segment_info("a" * 65 + "😀" + "a" * 67).segments == 2


def test_one_non_gsm_character_makes_the_whole_body_ucs2() -> None:
    assert segment_info("a" * 100 + "✓").encoding == "UCS-2"
    assert count_segments("a" * 100 + "✓") == 2


@settings(max_examples=60)
@given(st.text(alphabet=sorted(GSM7_BASIC), max_size=700))
def test_plain_gsm_bodies_divide_by_153(body: str) -> None:
    expected = 1 if len(body) <= 160 else -(-len(body) // 153)
    assert count_segments(body) == expected


@settings(max_examples=60)
@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=500))
def test_segments_hold_every_septet(body: str) -> None:
    info = segment_info(body)
    assert info.encoding == "GSM-7"
    capacity = 160 if info.segments == 1 else 153 * info.segments
    assert info.units <= capacity
    assert info.segments == 1 or info.units > 160
