"""Settings: defaults of the contract, and a malformed value names its variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from feeds.secret_box import new_key
from schemas.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SMSLANE_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_contracts() -> None:
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.database_url.startswith("sqlite+aiosqlite:///./var/")
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8000)
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert settings.twilio_lookup_base_url == "https://lookups.twilio.com"
    assert settings.line_type_lookup == "on"
    assert settings.api_keys == () and settings.admin_api_keys == ()
    assert settings.status_callback_url == "http://127.0.0.1:8000/v1/webhook/twilio/sms-status"


def test_comma_separated_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSLANE_API_KEYS", "alpha, beta,,gamma ")
    assert load_settings().api_keys == ("alpha", "beta", "gamma")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMSLANE_HTTP_PORT", "eighty"),
        ("SMSLANE_HTTP_PORT", "70000"),
        ("SMSLANE_LINE_TYPE_LOOKUP", "maybe"),
        ("SMSLANE_PUBLIC_BASE_URL", "ftp://example.com"),
        ("SMSLANE_KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("SMSLANE_DATABASE_URL", "mysql://x"),
    ],
)
def test_malformed_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert variable in str(raised.value)


def test_a_process_with_a_malformed_setting_stops_with_its_name() -> None:
    env = {"SMSLANE_HTTP_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "smslane.cli", "ingress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SMSLANE_HTTP_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_malformed_secret_key_names_the_variable_and_hides_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = new_key()
    monkeypatch.setenv("SMSLANE_SECRET_KEYS", f"{good},not-a-fernet-key-0123456789")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    text = str(raised.value)
    assert "SMSLANE_SECRET_KEYS=(hidden)" in text
    assert good not in text and "not-a-fernet-key" not in text
    monkeypatch.setenv("SMSLANE_SECRET_KEYS", f" {good} ,")
    assert load_settings().secret_keys == (good,)


@pytest.mark.parametrize("command", ["worker", "ingress"])
def test_the_worker_and_the_ingress_refuse_to_start_without_secret_keys(command: str) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "smslane.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "SMSLANE_SECRET_KEYS" in done.stderr
