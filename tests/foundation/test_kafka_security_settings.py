"""The Kafka security settings: defaults, and settings that contradict each other are
refused at start naming both, without ever echoing the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.settings import Settings, SettingsError, load_settings

PASSWORD = "pw-that-must-not-show"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SMSLANE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "some.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return path


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(f"SMSLANE_{name.upper()}", value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    text = str(refused.value)
    assert PASSWORD not in text
    return text


def test_the_defaults_are_plaintext_without_login() -> None:
    settings = Settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_mechanism == "PLAIN"
    assert settings.kafka_sasl_username is None and settings.kafka_sasl_password is None
    assert settings.kafka_ssl_cafile is None and settings.kafka_ssl_certfile is None


def test_a_sasl_protocol_without_credentials_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    text = refusal(
        monkeypatch, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_password=PASSWORD,
    )  # fmt: skip
    assert "SMSLANE_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in text
    assert "SMSLANE_KAFKA_SASL_USERNAME" in text and "SCRAM-SHA-512" in text


def test_credentials_with_a_protocol_that_sends_none(monkeypatch: pytest.MonkeyPatch) -> None:
    text = refusal(monkeypatch, kafka_sasl_username="u", kafka_sasl_password=PASSWORD)
    assert "SMSLANE_KAFKA_SASL_PASSWORD" in text
    assert "SMSLANE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in text


def test_a_key_without_a_certificate(monkeypatch: pytest.MonkeyPatch, pem: Path) -> None:
    text = refusal(monkeypatch, kafka_security_protocol="SSL", kafka_ssl_keyfile=str(pem))
    assert "SMSLANE_KAFKA_SSL_KEYFILE" in text and "SMSLANE_KAFKA_SSL_CERTFILE" in text


def test_tls_files_with_a_protocol_without_tls(monkeypatch: pytest.MonkeyPatch, pem: Path) -> None:
    text = refusal(monkeypatch, kafka_ssl_cafile=str(pem))
    assert "SMSLANE_KAFKA_SSL_CAFILE" in text
    assert "SMSLANE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in text


def test_a_missing_file_names_its_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = refusal(
        monkeypatch, kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "gone.pem")
    )
    assert "SMSLANE_KAFKA_SSL_CAFILE" in text and "no such file" in text


def test_an_unknown_mechanism_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    text = refusal(monkeypatch, kafka_sasl_mechanism="OAUTHBEARER")
    assert "SMSLANE_KAFKA_SASL_MECHANISM" in text


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSLANE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("SMSLANE_KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("SMSLANE_KAFKA_SASL_PASSWORD", PASSWORD)
    settings = load_settings()
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


@pytest.mark.parametrize("page", ["README.md", "docs/configuration.md", "docs/operations.md"])
def test_every_security_setting_is_documented(page: str) -> None:
    from schemas.kafka_security import KafkaSecuritySettings

    text = (Path(__file__).resolve().parents[2] / page).read_text()
    for name in KafkaSecuritySettings.model_fields:
        assert f"SMSLANE_{name.upper()}" in text, (page, name)
