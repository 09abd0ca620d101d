"""Logging for every smslane process, configured in one place: one line per event.

``SMSLANE_LOG_FORMAT=logfmt`` (the default) writes ``key=value`` pairs::

    ts=2026-11-26T10:00:01.204Z level=info logger=streams.lifecycle.agents
    msg="status changed" message_sid=SM… record_id=5b0c… status=delivered

(one line in the file).

``SMSLANE_LOG_FORMAT=json`` writes one JSON object per line with the same keys. Fields given
with ``extra={...}`` follow ``msg``; a traceback goes into ``exc`` (newlines escaped, so an
event never spans lines).

Secrets never reach the output: an ``extra`` field whose name looks like a credential
(``auth_token``, ``api_key``, ``authorization``, ``password``…) is replaced by
``[redacted]``, and so is any occurrence of a registered secret (the configured API keys)
anywhere in the line.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, Literal, TextIO

import orjson

LogFormat = Literal["logfmt", "json"]

REDACTED = "[redacted]"
#: Shorter values are not masked inside text (masking "abc" everywhere would garble lines).
MIN_SECRET_LENGTH = 8
_SECRET_NAME = re.compile(r"token|api_?key|authorization|password|secret", re.IGNORECASE)
#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message", "taskName"}
)
#: Libraries that log every request or connection step at INFO.
_QUIET = {
    "twilio.http_client": logging.WARNING,
    "httpx": logging.WARNING,
    "alembic.runtime.plugins": logging.WARNING,
}

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values wherever they would appear in a log line."""
    with _secrets_lock:
        _secrets.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def _mask(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@functools.lru_cache(maxsize=4096)
def _second(epoch_s: int) -> str:
    """``2026-11-26T10:00:01`` (UTC) of a whole second: lines of one second share it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))


@functools.lru_cache(maxsize=1024)
def _secret_name(key: str) -> bool:
    """Whether an ``extra`` field's name looks like a credential (a few names, many lines)."""
    return _SECRET_NAME.search(key) is not None


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event as ordered fields: ts, level, logger, msg, the extras, exc."""
    millis = int(record.created * 1000)
    out: dict[str, Any] = {
        "ts": f"{_second(millis // 1000)}.{millis % 1000:03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_"):
            continue
        out[key] = REDACTED if _secret_name(key) else value
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        out["exc"] = record.exc_text
    if record.stack_info:
        out["stack"] = record.stack_info
    return out


_BARE = re.compile(r'^[^\s="\\]+$')


def _logfmt_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    if _BARE.match(text):
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs on one line; values quoted when they need it."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())
        return _mask(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = orjson.dumps(_fields(record), default=str).decode()
        return _mask(line)


def configure_logging(
    log_format: LogFormat = "logfmt",
    *,
    verbose: bool = False,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every logger's events to ``stream`` (stderr) in ``log_format``, one per line.

    Replaces whatever handlers the root logger had, so calling it again (or after a
    library's ``basicConfig``) leaves exactly one handler.
    """
    register_secrets(secrets)
    # No line shows the caller's file and line, thread or process: the logging HOWTO's
    # "Optimization" switches skip collecting them (a stack walk per event, and more).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else level)
    logging.captureWarnings(True)
