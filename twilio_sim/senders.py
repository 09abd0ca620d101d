"""Sender selection of a Messaging Service: sticky sender, area-code and country geomatch.

For each message the pool number is chosen as Twilio documents it: the number already used for
this recipient within this service (Sticky Sender), else a number with the recipient's area
code (US/CA), else one from the recipient's country, else a US/CA number, else any number;
ties are broken round-robin. Pools are indexed once per configuration, so choosing costs a few
dictionary look-ups and no phone-number parsing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import phonenumbers


def _calling_code(number: str) -> str | None:
    try:
        return str(phonenumbers.parse(number, None).country_code)
    except phonenumbers.NumberParseException:
        return None


class _Pool:
    """One service's senders, indexed by area code and by calling code."""

    __slots__ = ("by_area", "by_country", "members", "numbers", "turn")

    def __init__(self, numbers: Sequence[str]) -> None:
        self.numbers: tuple[str, ...] = tuple(dict.fromkeys(numbers))
        self.members = frozenset(self.numbers)
        self.by_area: dict[str, list[str]] = {}
        self.by_country: dict[str, list[str]] = {}
        for number in self.numbers:
            code = _calling_code(number)
            if code is not None:
                self.by_country.setdefault(code, []).append(number)
            if code == "1" and len(number) == 12:
                self.by_area.setdefault(number[2:5], []).append(number)
        self.turn = 0

    def _candidates(self, to: str) -> Sequence[str]:
        if to.startswith("+1") and len(to) == 12:
            local = self.by_area.get(to[2:5])
            if local:
                return local
        for size in (1, 2, 3):
            national = self.by_country.get(to[1 : 1 + size])
            if national:
                return national
        return self.by_country.get("1") or self.numbers

    def choose(self, to: str) -> str:
        candidates = self._candidates(to)
        chosen = candidates[self.turn % len(candidates)]
        self.turn += 1
        return chosen


class SenderSelector:
    """Chooses the ``From`` number of Messaging Service sends; remembers sticky mappings."""

    def __init__(self, services: Mapping[str, Sequence[str]]) -> None:
        self._pools: dict[str, _Pool] = {}
        self._sticky: dict[tuple[str, str], str] = {}
        self.configure(services)

    def configure(self, services: Mapping[str, Sequence[str]]) -> None:
        """Replace the pools. Sticky mappings to numbers still in their pool are kept, as
        Twilio deletes only the mappings of a number removed from the service."""
        old = self._pools
        self._pools = {}
        for sid, numbers in services.items():
            previous = old.get(sid)
            if previous is not None and previous.numbers == tuple(dict.fromkeys(numbers)):
                self._pools[sid] = previous
            else:
                self._pools[sid] = _Pool(numbers)

    def knows(self, service_sid: str) -> bool:
        """Whether ``service_sid`` is a configured Messaging Service."""
        return service_sid in self._pools

    def is_empty(self, service_sid: str) -> bool:
        """Whether the service has no sender at all."""
        return not self._pools[service_sid].numbers

    def choose(self, service_sid: str, to: str) -> str:
        """The sender for a message to ``to`` through ``service_sid`` (known and not empty)."""
        pool = self._pools[service_sid]
        key = (service_sid, to)
        sticky = self._sticky.get(key)
        if sticky is not None and sticky in pool.members:
            return sticky
        chosen = pool.choose(to)
        self._sticky[key] = chosen
        return chosen

    def forget(self) -> None:
        """Drop every sticky mapping."""
        self._sticky.clear()
