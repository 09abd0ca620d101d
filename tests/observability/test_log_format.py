"""smslane.logs: one line per event, logfmt or JSON, secrets masked. No processes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from smslane.logs import REDACTED, JsonFormatter, LogfmtFormatter, register_secrets
from tests.observability.test_logs import parse_logfmt


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord(
        "streams.lifecycle.agents", logging.INFO, "f.py", 1, msg, args, exc_info
    )
    made.__dict__.update(extra)
    return made


def test_logfmt_is_one_line_of_pairs_in_a_stable_order() -> None:
    line = LogfmtFormatter().format(
        record("record changed: %s -> %s", "sent", "delivered",
               message_sid="SM1", record_id="r-1", version=3, note='say "hi"\nthen go',
               empty="", flag=True, missing=None)
    )  # fmt: skip
    assert "\n" not in line
    pairs = parse_logfmt(line)
    assert list(pairs)[:4] == ["ts", "level", "logger", "msg"]
    assert pairs["level"] == "info" and pairs["logger"] == "streams.lifecycle.agents"
    assert pairs["msg"] == "record changed: sent -> delivered"
    assert (pairs["message_sid"], pairs["record_id"], pairs["version"]) == ("SM1", "r-1", "3")
    assert pairs["note"] == 'say "hi"\nthen go'
    assert (pairs["empty"], pairs["flag"], pairs["missing"]) == ("", "true", "null")


def test_a_traceback_stays_on_the_line() -> None:
    line = LogfmtFormatter().format(record("failed", exc=True))
    assert "\n" not in line
    assert "ValueError: boom\nsecond line" in parse_logfmt(line)["exc"]


def test_json_is_one_object_per_line() -> None:
    line = JsonFormatter().format(record("hello %s", "you", message_sid="SM1", exc=True))
    assert "\n" not in line
    event = json.loads(line)
    assert list(event)[:4] == ["ts", "level", "logger", "msg"]
    assert event["msg"] == "hello you" and event["message_sid"] == "SM1"
    assert "ValueError" in event["exc"]


@pytest.mark.parametrize("name", ["auth_token", "api_key", "apikey", "Authorization", "password"])
def test_fields_named_like_credentials_are_redacted(name: str) -> None:
    line = LogfmtFormatter().format(record("x", **{name: "hunter2-hunter2"}))
    assert "hunter2" not in line and REDACTED in line


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secrets(["sk_live_registered_0123", "short"])
    for formatter in (LogfmtFormatter(), JsonFormatter()):
        line = formatter.format(record("key %s in the message", "sk_live_registered_0123",
                                       detail="and sk_live_registered_0123 here"))  # fmt: skip
        assert "sk_live_registered_0123" not in line
        assert line.count(REDACTED) == 2
    # Values too short to be keys are not masked inside words.
    assert "shorter" in LogfmtFormatter().format(record("shorter"))


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_configure_logging_is_the_only_handler_of_a_process(log_format: str) -> None:
    code = (
        "import logging; logging.basicConfig(format='%(message)s');"
        "from smslane.logs import configure_logging;"
        f"configure_logging({log_format!r}, secrets=['the-api-key-value']);"
        "logging.basicConfig(format='%(message)s');"  # a library's late basicConfig: no-op
        "logging.getLogger('uvicorn.error').info('key the-api-key-value', extra={'port': 1});"
        "logging.getLogger('twilio.http_client').info('-- BEGIN Twilio API Request --')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines  # twilio's per-request INFO lines are quieted
    event = json.loads(lines[0]) if log_format == "json" else parse_logfmt(lines[0])
    assert event["logger"] == "uvicorn.error" and event["port"] in (1, "1")
    assert event["msg"] == f"key {REDACTED}"


def test_the_cli_rejects_an_unknown_log_format() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smslane.cli", "kafka", "status"],
        env={"SMSLANE_LOG_FORMAT": "xml", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "SMSLANE_LOG_FORMAT" in done.stderr and "Traceback" not in done.stderr
