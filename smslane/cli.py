"""The ``smslane`` command: run the whole system or one of its processes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schemas.kafka_security import kafka_secrets
from schemas.settings import Settings, SettingsError, load_settings, require_secret_keys
from smslane.logs import LogFormat, configure_logging
from smslane.sms_cli import add_sms_commands
from smslane.webhooks_cli import add_webhooks_commands

if TYPE_CHECKING:
    from smslane.kafka_cluster import LocalCluster
    from smslane.kafka_local import LocalKafka

_DESCRIPTION = """\
smslane sends SMS through Twilio use cases and tracks every message's delivery lifecycle
through Kafka and Faust. Every process reads its settings from SMSLANE_* environment
variables (see README.md); a malformed one stops it at start with the variable's name."""

_EPILOG = """\
examples:
  smslane up --demo            everything on this machine, with a demo use case
  smslane kafka start          a local single-node Kafka broker (KRaft, no Docker)
  smslane kafka start --brokers 3
                               a local three-node cluster (stop and status find it)
  smslane kafka topics --print the topics smslane needs, as kafka-topics.sh commands
  smslane worker               the stream worker (send, lifecycle, configuration agents)
  smslane store rebuild --database-url URL
                               fill an empty store from sms.status, read from offset 0
  smslane secrets rotate       seal every stored auth token with the newest secret key
  smslane sms send --use-case ID --to +14155550123 --message "Hello"
                               send one SMS through the running ingress
  smslane sms tail             print each status change on sms.status as it happens
  smslane webhooks listen --port 9009 --secret whsec_...
                               print each webhook delivery received (development)
"""

_REBUILD_DESCRIPTION = """\
Fill an empty store from the Kafka topic sms.status (SMSLANE_TOPIC_PREFIX + sms.status),
read from offset 0 up to the end offsets taken at the start, with the sink's own upserts.
sms.status is compacted, so it holds the latest version of every record: the result is the
store the sink would have written (only the sink's write time, sink_updated_at, differs).
The rebuild reads without a consumer group and commits nothing. It refuses a database that
already holds records unless --force. Progress goes to standard error (a bar on a terminal,
otherwise a line every few seconds); a summary to standard output. Exit status: 0 done,
1 refused or database unreachable, 130 interrupted (run it again with --force to finish)."""

_REBUILD_EPILOG = """\
moving the store from SQLite to PostgreSQL:
  1. create the PostgreSQL database (empty; the schema is created by the rebuild)
  2. stop the sink (`smslane sink`): it must not commit past the end the rebuild reads to
  3. smslane store rebuild --database-url postgresql+asyncpg://USER@HOST:5432/smslane
  4. set SMSLANE_DATABASE_URL to that URL for the sink and the ingress, then start the sink
     and restart the ingress: the sink resumes from its committed offsets, which the
     rebuild already covers (applying them again changes nothing)
"""


_ROTATE_DESCRIPTION = """\
Seal every stored Twilio auth token again with the first (newest) key of SMSLANE_SECRET_KEYS.
It reads the config topic (SMSLANE_TOPIC_PREFIX + smslane-config-changelog) from offset 0
and writes a new record for every subaccount whose latest record is sealed with another key
of the list, or stored in clear (written before tokens were encrypted); then it reads the
topic again and checks that the latest record of every subaccount opens with the first key
alone. Compaction then drops the old records. Exit status: 0 done, 1 a token no key decrypts
(named) or Kafka unreachable."""

_ROTATE_EPILOG = """\
changing the key:
  1. make a key:
     python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'
  2. put it first, keep the old one after it: SMSLANE_SECRET_KEYS=NEW,OLD, and restart every
     ingress and worker with it (they then seal with NEW and still open OLD)
  3. SMSLANE_SECRET_KEYS=NEW,OLD smslane secrets rotate
  4. set SMSLANE_SECRET_KEYS=NEW and restart the ingress and worker processes
Run it while no subaccount is being changed through the admin API.
"""


def _sim_log_format() -> LogFormat:
    """SMSLANE_LOG_FORMAT alone: the simulator reads no other smslane setting."""
    value = os.environ.get("SMSLANE_LOG_FORMAT", "logfmt")
    if value not in ("logfmt", "json"):
        raise SettingsError(
            f"smslane: invalid setting\n  SMSLANE_LOG_FORMAT={value!r}: expected 'logfmt' or 'json'"
        )
    return "json" if value == "json" else "logfmt"


def _kafka(settings: Settings, args: argparse.Namespace) -> int:
    from smslane.kafka_cluster import LocalCluster
    from smslane.kafka_local import KafkaError

    if args.action == "topics":
        from smslane.kafka_topics import run_topics

        return run_topics(settings, check=args.check)
    brokers = args.brokers or LocalCluster.recorded_size(settings) or 1
    if brokers > 1:
        return _kafka_cluster(LocalCluster(settings, brokers), args.action)
    broker = _local_broker(settings, secured=args.sasl_ssl)
    try:
        if args.action == "start":
            broker.start()
        elif args.action == "stop":
            broker.stop()
        else:
            status = broker.status()
            sys.stdout.write(status.detail + "\n")
            return 0 if status.answering else 3
    except KafkaError as exc:
        sys.stderr.write(f"smslane kafka {args.action}: {exc}\n")
        return 1
    return 0


def _kafka_settings_fit(settings: Settings) -> None:
    """Stop now, naming the setting, when the broker accepts a connection but refuses
    the login, the TLS or the protocol (an unreachable one is retried later, as before)."""
    from feeds.kafka_check import require_connection_settings

    require_connection_settings(settings)


def _local_broker(settings: Settings, *, secured: bool) -> LocalKafka:
    """The local broker ``smslane kafka`` manages: PLAINTEXT, or SASL_SSL only."""
    from smslane.kafka_local import LocalKafka
    from smslane.kafka_secure import SecuredLocalKafka

    return SecuredLocalKafka(settings) if secured else LocalKafka(settings)


def _kafka_cluster(cluster: LocalCluster, action: str) -> int:
    from smslane.kafka_local import KafkaError

    try:
        if action == "start":
            cluster.start()
        elif action == "stop":
            cluster.stop()
        else:
            for node, status in zip(cluster.nodes, cluster.status(), strict=True):
                sys.stdout.write(f"node {node.node_id}: {status.detail}\n")
            return 0 if cluster.answering() else 3
    except KafkaError as exc:
        sys.stderr.write(f"smslane kafka {action}: {exc}\n")
        return 1
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.app import run_worker

    require_secret_keys(settings)
    _kafka_settings_fit(settings)
    run_worker(settings)
    return 0


def _sink(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.runner import main as run_sink

    _kafka_settings_fit(settings)
    run_sink(settings)
    return 0


def _store(settings: Settings, args: argparse.Namespace) -> int:
    from smslane.rebuild import run_rebuild

    _kafka_settings_fit(settings)
    return run_rebuild(
        settings, database_url=args.database_url, force=args.force, batch_size=args.batch_size
    )


def _ingress(settings: Settings, args: argparse.Namespace) -> int:
    from ingress.app import run_ingress

    require_secret_keys(settings)
    _kafka_settings_fit(settings)
    run_ingress(settings)
    return 0


def _secrets(settings: Settings, args: argparse.Namespace) -> int:
    from smslane.rotate import run_rotate

    _kafka_settings_fit(settings)
    return run_rotate(settings)


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from smslane.up import run_up

    return run_up(settings, demo=args.demo)


def _add_cluster_options(kafka: argparse.ArgumentParser) -> None:
    kafka.add_argument(
        "--brokers",
        type=int,
        default=None,
        help="start: that many KRaft nodes as one cluster, each controller and broker, in "
        "SMSLANE_DATA_DIR/kafka-cluster, node i on the ports base+2(i-1) and the next, base "
        "being SMSLANE_KAFKA_BOOTSTRAP_SERVERS's port; stop and status find the cluster "
        "started there by themselves",
    )
    kafka.set_defaults(check=False)  # `topics` alone prints
    shown = kafka.add_mutually_exclusive_group()
    shown.add_argument(
        "--print",
        dest="check",
        action="store_false",
        help="topics: print every topic smslane needs, its partitions, replication factor and "
        "configs, and the kafka-topics.sh command that creates it",
    )
    shown.add_argument(
        "--check",
        dest="check",
        action="store_true",
        help="topics: compare them with the cluster; exit 0 when every one exists as needed, "
        "4 otherwise (each difference named)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smslane",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run everything on this machine",
        description="Start the local Kafka broker (unless one answers at "
        "SMSLANE_KAFKA_BOOTSTRAP_SERVERS), the worker, the sink, the ingress and, when no "
        "real Twilio account is configured, the Twilio simulator. Ctrl-C stops all of it.",
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="also create a demo subaccount, brand, use case and sender pool, and show a live "
        "table of messages and their status changes",
    )
    up.set_defaults(run=_up)

    kafka = sub.add_parser(
        "kafka",
        help="a local Kafka broker or cluster (KRaft, no Docker); the topics smslane needs",
        description="Manage a single-node Apache Kafka broker on this machine, or a cluster of "
        "several (--brokers). The jars come from Maven Central through `mvn` (Java 17+ and "
        "Maven needed) and are cached in SMSLANE_KAFKA_HOME; data, pid file and log live in "
        "SMSLANE_DATA_DIR/kafka (a cluster: SMSLANE_DATA_DIR/kafka-cluster/node-N). `topics` "
        "lists the topics smslane needs, for clusters where it may not create them "
        "(SMSLANE_KAFKA_CREATE_TOPICS=off).",
    )
    kafka.add_argument(
        "action",
        choices=["start", "stop", "status", "topics"],
        help="start: in the background, waiting until it answers; stop: the broker smslane "
        "started; status: exit 0 when a broker answers, 3 otherwise; topics: the topics "
        "smslane needs (--print, the default) or which of them the cluster lacks (--check)",
    )
    kafka.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="the broker with a SASL_SSL listener only (SCRAM-SHA-512, test certificates from "
        "trustme, a generated password), its state in SMSLANE_DATA_DIR/kafka-sasl-ssl; start "
        "writes the client settings to client.env there (mode 0600; needs the dev extra)",
    )
    _add_cluster_options(kafka)
    kafka.set_defaults(run=_kafka)

    for name, run, text in (
        ("worker", _worker, "the Faust worker: send, lifecycle and configuration agents"),
        ("sink", _sink, "materialize sms.status into the SQL store (SMSLANE_DATABASE_URL)"),
        ("ingress", _ingress, "the HTTP API (uvicorn) on SMSLANE_HTTP_HOST:SMSLANE_HTTP_PORT"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.set_defaults(run=run)

    _add_store(sub)
    _add_secrets(sub)
    add_sms_commands(sub)
    add_webhooks_commands(sub)

    sim = sub.add_parser(
        "twilio-sim",
        help="the Twilio simulator, for development, demos, tests and benchmarks",
        add_help=False,
    )
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)
    sim.set_defaults(run=None)
    return parser


def _add_store(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = sub.add_parser(
        "store",
        help="operate on the SQL store: rebuild it from sms.status",
        description="Operations on the SQL store of records.",
    )
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild",
        help="fill an empty store from sms.status, read from offset 0",
        description=_REBUILD_DESCRIPTION,
        epilog=_REBUILD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rebuild.add_argument(
        "--database-url",
        required=True,
        metavar="URL",
        help="SQLAlchemy URL of the store to fill (sqlite+aiosqlite:///… or "
        "postgresql+asyncpg://…); the schema is created when missing",
    )
    rebuild.add_argument(
        "--force",
        action="store_true",
        help="also fill a store that already holds records (a record is only ever raised to "
        "a newer version, never lowered)",
    )
    rebuild.add_argument(
        "--batch-size", type=int, default=1000, metavar="N", help="events per transaction"
    )
    rebuild.set_defaults(run=_store)


def _add_secrets(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    secrets = sub.add_parser(
        "secrets",
        help="operate on stored secrets: seal them again with the newest key",
        description="Operations on the secrets smslane stores (Twilio auth tokens).",
    )
    actions = secrets.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = actions.add_parser(
        "rotate",
        help="seal every stored auth token with the first key of SMSLANE_SECRET_KEYS",
        description=_ROTATE_DESCRIPTION,
        epilog=_ROTATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rotate.set_defaults(run=_secrets)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["twilio-sim"]:
        # The simulator has its own options and --help.
        from twilio_sim import main as sim_main

        configure_logging(_sim_log_format(), verbose=bool({"-v", "--verbose"} & set(argv)))
        return sim_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(
        settings.log_format,
        verbose=args.verbose,
        secrets=(
            *settings.api_keys,
            *settings.admin_api_keys,
            *settings.secret_keys,
            *kafka_secrets(settings),
        ),
    )
    code: int = args.run(settings, args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
