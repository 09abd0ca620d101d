"""``python -m bench`` options that need no stack."""

from __future__ import annotations

import argparse

import pytest

from bench.cli import _rates


def test_send_rates_are_read_in_order() -> None:
    assert _rates("50,100,150") == (50, 100, 150)


@pytest.mark.parametrize("text", ["", "100,50", "0,10", "ten"])
def test_send_rates_that_are_not_a_rising_ladder_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _rates(text)
