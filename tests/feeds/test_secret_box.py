"""The crypto module: seal with the first key, open with any, refuse what no key opens."""

from __future__ import annotations

import pytest

from feeds.secret_box import SecretBox, Undecryptable, check_key, new_key

TOKEN = "0123456789abcdef0123456789abcdef"


def test_a_sealed_secret_opens_and_does_not_contain_the_secret() -> None:
    box = SecretBox([new_key()])
    sealed = box.seal(TOKEN)
    assert TOKEN not in sealed
    assert box.open(sealed) == TOKEN
    assert box.seal(TOKEN) != sealed  # a fresh IV every time


def test_the_first_key_seals_and_every_key_opens() -> None:
    new, old = new_key(), new_key()
    sealed_old = SecretBox([old]).seal(TOKEN)
    both = SecretBox([new, old])
    assert both.open(sealed_old) == TOKEN
    assert not both.is_newest(sealed_old)
    sealed_new = both.seal(TOKEN)
    assert both.is_newest(sealed_new)
    assert SecretBox([new]).open(sealed_new) == TOKEN
    with pytest.raises(Undecryptable):
        SecretBox([old]).open(sealed_new)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_value_is_refused_not_decrypted(damage: str) -> None:
    box = SecretBox([new_key()])
    sealed = box.seal(TOKEN)
    if damage == "flip":
        middle = len(sealed) // 2
        sealed = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    elif damage == "truncate":
        sealed = sealed[:-8]
    else:
        sealed = "not a token"
    with pytest.raises(Undecryptable):
        box.open(sealed)
    assert not box.is_newest(sealed)


@pytest.mark.parametrize("key", ["", "short", "x" * 44, new_key()[:-2]])
def test_a_malformed_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_key(key)
    assert not key or key not in str(caught.value)
    with pytest.raises(ValueError):
        SecretBox([new_key(), key])


def test_a_box_needs_a_key() -> None:
    with pytest.raises(ValueError, match="SMSLANE_SECRET_KEYS"):
        SecretBox([])
