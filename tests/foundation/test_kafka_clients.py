"""Every Kafka client is built by ``feeds.kafka_clients`` with the connection settings.

The scan reads the source of every package a process or a benchmark runs: a client
constructed anywhere else (a new consumer on defaults, say) would talk PLAINTEXT to a
secured cluster, so it fails here, naming the file and line.
"""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import faust
import pytest
import trustme

from feeds import kafka_clients
from schemas.settings import Settings
from smslane.processes import new_key
from streams.app import create_app

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "feeds", "store", "ingress", "streams", "sinks", "smslane", "bench")
#: aiokafka's clients and connection, and Faust's credentials: built only by the factory.
CLIENTS = frozenset(
    {
        "AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient",
        "KafkaAdminClient", "AIOKafkaConnection", "SASLCredentials", "SSLCredentials",
    }
)  # fmt: skip
FACTORY = Path("feeds/kafka_clients.py")
#: The start-up check opens one raw connection with the factory's options.
RAW_CONNECTION = {Path("feeds/kafka_check.py"): {"create_conn"}}


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def constructors(path: Path) -> list[tuple[int, str, ast.Call]]:
    """(line, name, call) of every call in ``path`` that builds a Kafka client or app."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:  # `import AIOKafkaConsumer as C` would hide it
                assert alias.name not in CLIENTS or alias.asname is None, (path, alias.name)
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in CLIENTS or name in {"App", "create_conn"}:
                found.append((node.lineno, name, node))
    return found


def sources() -> list[Path]:
    return sorted(p.relative_to(ROOT) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_kafka_client_is_built_outside_the_factory() -> None:
    stray = []
    for path in sources():
        for line, name, _ in constructors(ROOT / path):
            allowed = path == FACTORY or name in RAW_CONNECTION.get(path, set())
            if name == "App":  # the Faust app: checked by the next test
                continue
            if not allowed:
                stray.append(f"{path}:{line} {name}(...)")
    assert not stray, (
        "Kafka clients built without the connection settings: use feeds.kafka_clients "
        "(producer, consumer, admin, client):\n  " + "\n  ".join(stray)
    )


def test_every_faust_app_takes_the_shared_credentials() -> None:
    apps = [(path, line, call) for path in sources()
            for line, name, call in constructors(ROOT / path) if name == "App"]  # fmt: skip
    assert apps, "the scan no longer finds the worker's faust.App"
    for path, line, call in apps:
        keywords = {k.arg: k.value for k in call.keywords}
        assert "broker_credentials" in keywords, f"{path}:{line} faust.App without credentials"
        value = keywords["broker_credentials"]
        assert isinstance(value, ast.Call) and _called_name(value) == "faust_credentials"


def test_the_scan_finds_a_forgotten_client(tmp_path: Path) -> None:
    forgotten = tmp_path / "forgotten.py"
    forgotten.write_text(
        "import aiokafka\nfrom aiokafka import AIOKafkaConsumer\n"
        "c = AIOKafkaConsumer(bootstrap_servers='x:1')\np = aiokafka.AIOKafkaProducer()\n"
    )
    assert [name for _, name, _ in constructors(forgotten)] == [
        "AIOKafkaConsumer",
        "AIOKafkaProducer",
    ]


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def sasl_ssl(ca_file: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_bootstrap_servers": "127.0.0.1:1",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "smslane",
        "kafka_sasl_password": "s3cret-pw",
        "kafka_ssl_cafile": ca_file,
    }
    return Settings.model_validate({**values, **overrides})


async def test_every_client_kind_carries_the_login_and_tls(ca_file: Path) -> None:
    settings = sasl_ssl(ca_file)
    options = kafka_clients.connection_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "smslane",
        "s3cret-pw",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname
    producer = kafka_clients.producer(settings)
    assert producer.client._security_protocol == "SASL_SSL"
    assert producer.client._sasl_plain_password == "s3cret-pw"
    admin = kafka_clients.admin(settings)
    assert admin._client._sasl_mechanism == "SCRAM-SHA-512"


def test_plaintext_clients_get_no_tls_and_no_login() -> None:
    options = kafka_clients.connection_options(Settings(kafka_bootstrap_servers="h:1"))
    assert options == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}
    assert kafka_clients.faust_credentials(Settings()) is None


def test_the_worker_app_gets_the_same_login(ca_file: Path, tmp_path: Path) -> None:
    settings = sasl_ssl(
        ca_file, data_dir=tmp_path, table_store="memory://", secret_keys=(new_key(),)
    )
    credentials = create_app(settings).app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"
    assert (credentials.username, credentials.password) == ("smslane", "s3cret-pw")
    assert "s3cret-pw" not in repr(credentials)
