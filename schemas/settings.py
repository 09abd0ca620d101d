"""Every runtime setting of smslane, read from ``SMSLANE_*`` environment variables.

A malformed value stops the process at start with a message naming the variable
(:func:`load_settings`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from schemas.kafka_security import KafkaSecuritySettings

CommaList = Annotated[tuple[str, ...], NoDecode]
FloatList = Annotated[tuple[float, ...], NoDecode]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: Twilio's connection overrides appended to every StatusCallback: retry a callback the
#: webhook could not store (503) up to 3 times. The request Twilio makes carries no fragment,
#: but its signature may be computed over the URL with it; the webhook accepts both.
STATUS_CALLBACK_FRAGMENT = "rc=3&rp=all"
#: Where Twilio sends incoming messages (a number's or Messaging Service's webhook).
INBOUND_WEBHOOK_PATH = "/v1/webhook/twilio/sms-inbound"


class Settings(KafkaSecuritySettings):
    """Process settings shared by the ingress, the worker, the sink and the CLI (the Kafka
    security settings come from :class:`KafkaSecuritySettings`)."""

    model_config = SettingsConfigDict(env_prefix="SMSLANE_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/smslane.db",
        description="SQLAlchemy URL of the store (sqlite+aiosqlite or postgresql+asyncpg).",
    )
    http_host: str = Field("127.0.0.1", description="Address the ingress listens on.")
    http_port: int = Field(8000, ge=1, le=65535, description="Port the ingress listens on.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL at which Twilio reaches the ingress (StatusCallback, signatures).",
    )
    twilio_api_base_url: str = Field("https://api.twilio.com", description="Twilio REST API base.")
    twilio_lookup_base_url: str = Field(
        "https://lookups.twilio.com", description="Twilio Lookup API base."
    )
    line_type_lookup: Literal["on", "off"] = Field(
        "on", description="`off` skips the Lookup call; validity and region still apply."
    )
    api_keys: CommaList = Field((), description="Bearer keys accepted on /v1/sms*.")
    admin_api_keys: CommaList = Field((), description="Bearer keys accepted on /v1/admin/*.")
    secret_keys: CommaList = Field(
        (),
        description="Keys encrypting stored secrets (Twilio auth tokens), comma-separated "
        "Fernet keys: the first encrypts, all decrypt. Required by the worker and the ingress; "
        "`smslane up` creates a development key.",
    )

    topic_prefix: str = Field(
        "", description="Prefix for every topic name (lets several deployments share a broker)."
    )
    app_id: str = Field(
        "smslane",
        description="Name of the sink's consumer group, after SMSLANE_TOPIC_PREFIX "
        "(<prefix><app id>-sink). The worker's Faust app id is <prefix>smslane.",
    )
    data_dir: Path = Field(Path("var"), description="Where local state, logs and tables live.")
    topic_partitions: int = Field(
        4, ge=1, le=256, description="Partitions of the per-message topics."
    )
    send_timeout_seconds: float = Field(
        10.0, gt=0, description="How long POST /v1/sms/ waits for the worker's answer."
    )
    send_max_in_flight: int = Field(
        100,
        ge=1,
        description="Most POST /v1/sms/ requests one ingress process waits on at once. Beyond it "
        "the answer is 503 service_unavailable with Retry-After: 1 at once: past capacity, "
        "queueing only turns into 504s for messages the worker still sends. At the ~250 "
        "sends/s one worker manages on 2 cores, 100 in flight is ~0.4 s of queue.",
    )
    kafka_timeout_seconds: float = Field(
        5.0, gt=0, description="Bound on a Kafka produce or metadata call made for a request."
    )
    kafka_replication_factor: int | None = Field(
        None,
        ge=1,
        le=32,
        description="Replicas of every topic smslane creates, the tables' changelogs "
        "included. Unset: 3, or the cluster's broker count when it has fewer (the local "
        "single broker gets 1). Topics with 3 or more get min.insync.replicas=2. Existing "
        "topics are never changed: one with fewer replicas is named in a warning at start.",
    )
    kafka_create_topics: Literal["on", "off"] = Field(
        "on",
        description="`off`: no process creates or alters a topic; each checks that the topics "
        "exist (the worker stops when one is missing). For clusters where an operator creates "
        "them, from `smslane kafka topics --print`.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        25,
        ge=1,
        le=1500,
        description="How long the worker's Kafka fetch may wait for data. One fetch is in "
        "flight per broker, covering only partitions with nothing buffered, so this bounds how "
        "long a busy partition can wait behind idle ones (Faust's own value is 1500 ms). "
        "Shorter costs CPU in empty fetches: ~15 % more per lifecycle event at 25 ms than at "
        "100 ms while catching up a backlog (BENCH.md). After a second without records, a "
        "fetch naming every partition the worker reads waits 500 ms instead (new records "
        "answer it at once): an idle worker asks twice a second.",
    )
    kafka_session_timeout_seconds: float = Field(
        6.0,
        ge=1.0,
        le=300.0,
        description="Consumer-group session timeout of the worker and the sink: a process that "
        "died without leaving its group (kill -9, a lost machine) keeps its partitions this "
        "long before another member takes them over. Heartbeats go every third of it. The "
        "broker refuses values below its group.min.session.timeout.ms (6 s by default).",
    )
    sink_batch_wait_ms: int = Field(
        50,
        ge=0,
        le=5000,
        description="How long the sink's fetch may wait for 64 KiB of status events to write "
        "in one transaction: fewer, larger batches under load, at most this much staleness.",
    )
    reconcile_margin_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="A request interrupted inside the Twilio call (worker killed) is sent again "
        "only if Twilio has no message for it this long after its first attempt's deadline "
        "(SMSLANE_SEND_TIMEOUT_SECONDS after the attempt began): by then that attempt can no "
        "longer arrive. Until then a retry answers 503 with Retry-After.",
    )
    status_repair_after_seconds: float = Field(
        900.0,
        gt=0,
        description="A record still pending or sent this long after its last change is checked "
        "against Twilio's own status of the message (Messages fetch), in case its callbacks "
        "were lost.",
    )
    provider_max_attempts: int = Field(
        4, ge=1, le=10, description="Attempts at a Twilio call before provider_unavailable."
    )
    provider_timeout_seconds: float = Field(
        5.0, gt=0, description="Timeout of one Twilio HTTP call."
    )
    record_retention_days: float = Field(
        7.0, gt=0, description="How long a terminal record stays in the worker's hot table."
    )
    stale_record_days: float = Field(
        14.0,
        gt=0,
        description="How long a record that never reaches a final status (no delivery receipt "
        "came) stays in the worker's hot table after its last change. The store keeps it.",
    )
    early_callback_hold_seconds: float = Field(
        300.0, gt=0, description="How long a callback for an unknown MessageSid is held."
    )
    early_callback_max_held: int = Field(
        10_000, ge=1, description="At most this many early callbacks are held at once."
    )
    table_store: str = Field(
        "rocksdb://", description="Faust table store URL (rocksdb:// or memory://)."
    )
    kafka_version: str = Field("4.1.1", description="Apache Kafka version `smslane kafka` runs.")
    kafka_home: Path = Field(
        Path.home() / ".cache" / "smslane" / "kafka",
        description="Cache of the Kafka artifacts resolved from Maven Central.",
    )
    log_format: Literal["logfmt", "json"] = Field(
        "logfmt",
        description="Log lines as key=value pairs (`logfmt`) or JSON objects (`json`), "
        "one line per event.",
    )
    worker_metrics_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port of the worker's Prometheus /metrics (on SMSLANE_HTTP_HOST); "
        "0 disables it.",
    )

    webhook_allow_private_urls: Literal["on", "off"] = Field(
        "off",
        description="`on` lets webhook endpoints use http:// and private, loopback or "
        "link-local addresses (development, `smslane up --demo`); `off` refuses them at "
        "registration and at every delivery.",
    )
    webhook_retry_delays_seconds: FloatList = Field(
        (5.0, 30.0, 120.0, 600.0, 3600.0, 10800.0, 21600.0),
        description="Delays of a webhook delivery's retries after each failed attempt, "
        "comma-separated seconds; after the last, SMSLANE_WEBHOOK_RETRY_EVERY_SECONDS.",
    )
    webhook_retry_every_seconds: float = Field(
        43200.0, gt=0, description="Retry delay of a webhook delivery after the listed ones."
    )
    webhook_retry_for_seconds: float = Field(
        259200.0,
        gt=0,
        description="A webhook delivery is failed once its next retry would come later than "
        "this after the event (72 h).",
    )
    webhook_disable_after_seconds: float = Field(
        259200.0,
        gt=0,
        description="A webhook endpoint whose attempts have all failed for this long (72 h) "
        "is disabled (logged, counted); PATCH it with enabled=true once it is fixed.",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a webhook receiver has to answer one attempt."
    )
    webhook_dispatch_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="How often the worker looks for webhook attempts due."
    )
    webhook_max_in_flight_per_endpoint: int = Field(
        4, ge=1, le=100, description="Concurrent webhook attempts to one endpoint, at most."
    )

    @field_validator(
        "api_keys", "admin_api_keys", "secret_keys", "webhook_retry_delays_seconds", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("secret_keys")
    @classmethod
    def _secret_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            try:
                raw = base64.urlsafe_b64decode(key.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "each key must be 32 bytes in URL-safe base64 (44 characters, a Fernet "
                    "key); make one with `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`"
                )
        return value

    @field_validator("public_base_url", "twilio_api_base_url", "twilio_lookup_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite+aiosqlite://... or postgresql+asyncpg://...")
        return value

    @property
    def record_retention(self) -> timedelta:
        return timedelta(days=self.record_retention_days)

    @property
    def stale_record_after(self) -> timedelta:
        return timedelta(days=self.stale_record_days)

    @property
    def status_callback_url(self) -> str:
        """The status webhook's URL, as the ingress serves it (no fragment)."""
        return f"{self.public_base_url}/v1/webhook/twilio/sms-status"

    @property
    def status_callback_with_overrides(self) -> str:
        """The StatusCallback given to Twilio for every message: :attr:`status_callback_url`
        with the connection-override fragment :data:`STATUS_CALLBACK_FRAGMENT`."""
        return f"{self.status_callback_url}#{STATUS_CALLBACK_FRAGMENT}"


#: Values never echoed in error messages (URLs may carry passwords).
_SECRET_FIELDS = frozenset(
    {"api_keys", "admin_api_keys", "secret_keys", "database_url", "kafka_sasl_password"}
)


class SettingsError(SystemExit):
    """Raised at start-up when a setting is malformed; its text names each variable."""


def require_secret_keys(settings: Settings) -> None:
    """Stop a process that reads stored secrets (worker, ingress) when no key is set."""
    if not settings.secret_keys:
        raise SettingsError(
            "smslane: SMSLANE_SECRET_KEYS is not set: it needs at least one key to encrypt "
            "and decrypt stored Twilio auth tokens (README.md, Security)"
        )


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment, or exit with a message naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            if not error["loc"]:  # settings that contradict each other: the message names them
                lines.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            field = str(error["loc"][0])
            value = "(hidden)" if field in _SECRET_FIELDS else repr(error.get("input"))
            lines.append(f"SMSLANE_{field.upper()}={value}: {error['msg']}")
        raise SettingsError("smslane: invalid setting\n  " + "\n  ".join(lines)) from None
