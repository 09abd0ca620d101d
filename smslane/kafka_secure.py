"""The local broker with a SASL_SSL listener only (``smslane kafka start --sasl-ssl``).

For tests and for trying smslane's security settings on this machine: a test CA and the
broker's certificate from ``trustme`` (made once, kept in ``SMSLANE_DATA_DIR/kafka-sasl-ssl/
tls``), one SCRAM-SHA-512 user created with ``kafka-storage format --add-scram``, with a
generated password. The password is written to files of mode 0600 (the broker's config and
``client.env``) and never printed or logged; it is on the command line of the storage
format tool for the second that tool runs (``--add-scram`` takes it no other way).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from schemas.settings import Settings
from smslane.kafka_local import BrokerStatus, KafkaError, LocalKafka, Progress, _print

#: The SCRAM user the broker itself and every client log in as.
USER = "smslane"
MECHANISM = "SCRAM-SHA-512"
_STORAGE_TOOL = "kafka.tools.StorageTool"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _one_line(pem: Path) -> str:
    """A PEM file as one properties value (Kafka ignores the whitespace inside)."""
    return " ".join(pem.read_text().split("\n")).strip()


class SecuredLocalKafka(LocalKafka):
    """:class:`LocalKafka` whose only client listener is SASL_SSL with SCRAM-SHA-512.

    Its state lives apart from the PLAINTEXT broker's (``kafka-sasl-ssl`` in the data
    directory), so both can exist side by side on different ports.
    """

    def __init__(
        self, settings: Settings, progress: Progress = _print, *, bar: bool | None = None
    ) -> None:
        super().__init__(settings, progress, bar=bar)
        self.state = settings.data_dir.resolve() / "kafka-sasl-ssl"
        self.data = self.state / "data"
        self.pid_file = self.state / "broker.pid"
        self.log_file = self.state / "broker.log"
        self.tls = self.state / "tls"
        self.password_file = self.state / "sasl-password"
        self.env_file = self.state / "client.env"
        if self.password_file.exists():
            self.settings = self.client_settings()

    @property
    def ca_file(self) -> Path:
        return self.tls / "ca.pem"

    def client_settings(self) -> Settings:
        """The given settings with the SASL_SSL login and CA this broker needs."""
        return self.settings.model_copy(
            update={
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": MECHANISM,
                "kafka_sasl_username": USER,
                "kafka_sasl_password": SecretStr(self.password_file.read_text().strip()),
                "kafka_ssl_cafile": self.ca_file,
            }
        )

    def client_environment(self) -> dict[str, str]:
        """The ``SMSLANE_KAFKA_*`` variables a client of this broker sets."""
        settings = self.client_settings()
        assert settings.kafka_sasl_password is not None
        return {
            "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "SMSLANE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SMSLANE_KAFKA_SASL_MECHANISM": MECHANISM,
            "SMSLANE_KAFKA_SASL_USERNAME": USER,
            "SMSLANE_KAFKA_SASL_PASSWORD": settings.kafka_sasl_password.get_secret_value(),
            "SMSLANE_KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    # -- secrets ---------------------------------------------------------------------------

    def _make_secrets(self) -> None:
        """The test CA, the broker's certificate and the password, once (a restart keeps
        them, so configured clients keep working)."""
        if self.password_file.exists() and self.ca_file.exists():
            return
        try:
            import trustme
            from cryptography.hazmat.primitives import serialization
        except ImportError as exc:
            raise KafkaError(
                "--sasl-ssl makes its test certificates with `trustme`, a development "
                f"dependency: install smslane with its `dev` extra ({exc})"
            ) from None
        ca = trustme.CA()
        issued = ca.issue_cert(self.host, "localhost", "127.0.0.1")
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
        pkcs8 = key.private_bytes(  # Kafka's PEM key store reads PKCS#8 keys only
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.tls / "broker-key.pem", pkcs8.decode())
        chain = "".join(pem.bytes().decode() for pem in issued.cert_chain_pems)
        (self.tls / "broker-chain.pem").write_text(chain)
        ca.cert_pem.write_to_path(str(self.ca_file))
        password = secrets.token_urlsafe(24)
        _write_private(self.password_file, password + "\n")

    # -- LocalKafka's steps, secured -------------------------------------------------------

    def start(self, timeout_s: float = 90.0, *, die_with_parent: bool = False) -> BrokerStatus:
        """Make the certificates and the password if needed, then start as
        :meth:`LocalKafka.start` does; the client settings go to ``client.env``."""
        self._make_secrets()
        self.settings = self.client_settings()
        _write_private(
            self.env_file, "".join(f"{k}={v}\n" for k, v in self.client_environment().items())
        )
        status = super().start(timeout_s, die_with_parent=die_with_parent)
        self.progress(
            f"The broker accepts SASL_SSL only ({MECHANISM}, user {USER!r}). Clients need: "
            f"set -a; . {self.env_file}; set +a   (it holds the password; mode 0600)"
        )
        return status

    def _write_config(self) -> Path:
        path = super()._write_config()
        props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        props.update(self._secured_properties())
        _write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _secured_properties(self) -> dict[str, str]:
        password = self.password_file.read_text().strip()
        controller = self.port + 1
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{USER}" password="{password}";'
        )
        return {
            "listeners": f"SASL_SSL://{self.host}:{self.port},CONTROLLER://{self.host}:{controller}",
            "advertised.listeners": f"SASL_SSL://{self.host}:{self.port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            # Inline (one line each): a PEM key *file* must be encrypted, in a scheme
            # Java 17 cannot read; an inline key may be plain PKCS#8.
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": _one_line(self.tls / "broker-key.pem"),
            "ssl.keystore.certificate.chain": _one_line(self.tls / "broker-chain.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
        }

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        """Formatting the storage also creates the SCRAM user (KIP-900)."""
        if main == _STORAGE_TOOL and args[:1] == ("format",):
            password = self.password_file.read_text().strip()
            args = (*args, "--add-scram", f"{MECHANISM}=[name={USER},password={password}]")
        return super()._java_cmd(main, *args)
