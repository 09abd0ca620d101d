"""`smslane up`'s development secret key: under the data directory, mode 0600, reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.settings import Settings
from smslane.up import _Up


def test_up_creates_a_private_development_key_and_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMSLANE_SECRET_KEYS", raising=False)
    up = _Up(Settings(data_dir=tmp_path / "var"), demo=False)  # type: ignore[call-arg]
    key_file = tmp_path / "var" / "secret.key"
    assert up.env["SMSLANE_SECRET_KEYS"] == key_file.read_text().strip()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert up.key_note is not None and "created" in up.key_note and str(key_file) in up.key_note
    again = _Up(Settings(data_dir=tmp_path / "var"), demo=False)  # type: ignore[call-arg]
    assert again.env["SMSLANE_SECRET_KEYS"] == up.env["SMSLANE_SECRET_KEYS"]
    assert again.key_note is not None and "using" in again.key_note


def test_up_uses_the_configured_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feeds.secret_box import new_key

    key = new_key()
    monkeypatch.setenv("SMSLANE_SECRET_KEYS", key)
    up = _Up(Settings(data_dir=tmp_path / "var"), demo=False)  # type: ignore[call-arg]
    assert up.env["SMSLANE_SECRET_KEYS"] == key and up.key_note is None
    assert not (tmp_path / "var" / "secret.key").exists()
