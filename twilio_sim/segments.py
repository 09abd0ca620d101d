"""How many SMS segments a body takes, counted the way Twilio counts them.

A body whose characters all exist in the GSM 03.38 alphabet is sent as GSM-7: one segment holds
160 septets, and a concatenated message 153 per segment (7 go to the User Data Header). The
characters of the GSM extension table (``^ { } \\ [ ~ ] | €`` and form feed) take two septets
(escape + character) and are never split across two segments. Any other character makes the
whole body UCS-2: 70 UTF-16 code units in one segment, 67 per concatenated segment, and a
surrogate pair (an emoji, say) is never split either. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""Characters of the GSM 03.38 default alphabet: one septet each."""

GSM7_EXTENSION: frozenset[str] = frozenset("^{}\\[~]|€\x0c")
"""Characters of the GSM 03.38 extension table: two septets each (escape + character)."""

_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE = 160
GSM7_CONCATENATED = 153
UCS2_SINGLE = 70
UCS2_CONCATENATED = 67


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """The outcome of segmenting one body."""

    encoding: Encoding
    """``GSM-7`` or ``UCS-2``."""
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole body."""
    segments: int
    """Number of SMS segments, at least 1."""


def _pack(costs: list[int], per_segment: int) -> int:
    """Greedily fill segments of ``per_segment`` units, never splitting one character."""
    segments = 1
    free = per_segment
    for cost in costs:
        if cost > free:
            segments += 1
            free = per_segment
        free -= cost
    return segments


def _count(total: int, costs: list[int] | None, single: int, concatenated: int) -> int:
    if total <= single:
        return 1
    if costs is None:  # every character costs one unit: plain division
        return -(-total // concatenated)
    return _pack(costs, concatenated)


def segment_info(body: str) -> SegmentInfo:
    """Encoding, size and segment count of ``body`` (an empty body counts as one segment)."""
    chars = set(body)
    if chars <= GSM7_BASIC:
        return SegmentInfo(
            "GSM-7", len(body), _count(len(body), None, GSM7_SINGLE, GSM7_CONCATENATED)
        )
    if chars <= _GSM7_ALL:
        costs = [2 if c in GSM7_EXTENSION else 1 for c in body]
        total = sum(costs)
        return SegmentInfo("GSM-7", total, _count(total, costs, GSM7_SINGLE, GSM7_CONCATENATED))
    if all(ord(c) <= 0xFFFF for c in chars):
        return SegmentInfo(
            "UCS-2", len(body), _count(len(body), None, UCS2_SINGLE, UCS2_CONCATENATED)
        )
    costs = [2 if ord(c) > 0xFFFF else 1 for c in body]
    total = sum(costs)
    return SegmentInfo("UCS-2", total, _count(total, costs, UCS2_SINGLE, UCS2_CONCATENATED))


def count_segments(body: str) -> int:
    """Number of SMS segments Twilio bills for ``body`` (``NumSegments``)."""
    return segment_info(body).segments
