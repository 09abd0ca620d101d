"""smslane on a broker that accepts only SASL_SSL with SCRAM-SHA-512.

One feature path end to end (an admin call, a send, the callbacks reaching the store, a CLI
command that reads Kafka), then processes started with a wrong setting: each stops at start
with one line naming it. Last, no log or error of the whole run shows the password.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.settings import Settings
from smslane.kafka_secure import SecuredLocalKafka
from tests.harness import Stack
from tests.integration.test_lifecycle import send_with_scenario, wait_for
from tests.up.test_up_exits import up_command

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-password-0123"


def password_of(broker: SecuredLocalKafka) -> str:
    return broker.client_environment()["SMSLANE_KAFKA_SASL_PASSWORD"]


def run_smslane(stack: Stack, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``smslane ARGS`` with the stack's environment, ``env`` (SMSLANE_* names) on top."""
    return subprocess.run(
        [sys.executable, "-m", "smslane.cli", *args],
        env={**stack.env, **env}, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


async def test_send_callbacks_store_and_admin_over_sasl_ssl(secured_stack: Stack) -> None:
    sent = await send_with_scenario(secured_stack, "delivered")  # admin call, then a send
    record = await wait_for(secured_stack, sent["id"], lambda r: r["status"] == "delivered")
    assert record["message_sid"] == sent["message_sid"]
    async with secured_stack.admin() as admin:
        got = await admin.get(f"/v1/admin/sms-use-cases/{sent['use_case_id']}")
        assert got.status_code == 200, got.text
    # The harness's own clients read the topics with the same settings.
    events = await secured_stack.read_topic("sms.status")
    assert any(sent["message_sid"].encode() in event.value for event in events)


async def test_store_rebuild_reads_the_secured_topic(secured_stack: Stack, tmp_path: Path) -> None:
    sent = await send_with_scenario(secured_stack, "delivered")
    await wait_for(secured_stack, sent["id"], lambda r: r["status"] == "delivered")
    url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    done = run_smslane(secured_stack, ["store", "rebuild", "--database-url", url])
    assert done.returncode == 0, done.stderr
    assert re.search(r": [1-9][0-9]* records", done.stdout), done.stdout


@pytest.mark.parametrize("process", ["worker", "sink", "ingress"])
def test_a_wrong_password_stops_the_process_naming_the_setting(
    secured_stack: Stack, secured_broker: SecuredLocalKafka, process: str
) -> None:
    done = run_smslane(secured_stack, [process], SMSLANE_KAFKA_SASL_PASSWORD=WRONG_PASSWORD)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "SMSLANE_KAFKA_SASL_PASSWORD" in last and "refused the login" in last, done.stderr
    for secret in (WRONG_PASSWORD, password_of(secured_broker)):
        assert secret not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SMSLANE_KAFKA_SSL_CAFILE": ""}, "SMSLANE_KAFKA_SSL_CAFILE"),  # the system's CAs
        (
            {
                "SMSLANE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
                "SMSLANE_KAFKA_SASL_USERNAME": "",
                "SMSLANE_KAFKA_SASL_PASSWORD": "",
                "SMSLANE_KAFKA_SSL_CAFILE": "",
            },
            "SMSLANE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
    ],
    ids=["unknown-ca", "plaintext-against-tls"],
)
def test_a_setting_that_does_not_fit_the_listener_stops_the_worker(
    secured_stack: Stack, secured_broker: SecuredLocalKafka, env: dict[str, str], named: str
) -> None:
    environment = {**secured_stack.env, **env}
    for name, value in env.items():
        if not value:
            del environment[name]
    done = subprocess.run(
        [sys.executable, "-m", "smslane.cli", "worker"],
        env=environment, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert named in last, done.stderr
    assert password_of(secured_broker) not in done.stdout + done.stderr


def test_up_with_a_wrong_password_stops_naming_the_setting(
    secured_broker: SecuredLocalKafka, tmp_path: Path
) -> None:
    command, env, var = up_command(tmp_path, secured_broker.settings.kafka_bootstrap_servers)
    env.update(
        {**secured_broker.client_environment(), "SMSLANE_KAFKA_SASL_PASSWORD": WRONG_PASSWORD}
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "SMSLANE_KAFKA_SASL_PASSWORD: the broker refused the login" in said
    assert not (var / "kafka").exists() and not (var / "log").exists()  # nothing started
    assert WRONG_PASSWORD not in said and password_of(secured_broker) not in said


def test_the_broker_shows_where_the_client_settings_are_never_the_password(
    secured_broker: SecuredLocalKafka, broker_said: list[str]
) -> None:
    assert any(str(secured_broker.env_file) in line for line in broker_said), broker_said
    assert not any(password_of(secured_broker) in line for line in broker_said)
    for private in (secured_broker.env_file, secured_broker.password_file):
        assert private.stat().st_mode & 0o777 == 0o600
    env = dict(line.split("=", 1) for line in secured_broker.env_file.read_text().splitlines())
    assert env == secured_broker.client_environment()


def test_smslane_kafka_takes_the_sasl_ssl_broker() -> None:
    from smslane.cli import _local_broker, build_parser

    args = build_parser().parse_args(["kafka", "start", "--sasl-ssl"])
    assert args.sasl_ssl
    assert isinstance(_local_broker(Settings(), secured=True), SecuredLocalKafka)


def test_no_log_of_the_run_shows_the_password(
    secured_stack: Stack, secured_broker: SecuredLocalKafka
) -> None:
    """Every process's log of the stack, and the broker's own (the last test of the module:
    the logs hold everything above)."""
    password = password_of(secured_broker)
    logs = [*sorted((secured_stack.root / "logs").iterdir()), secured_broker.log_file]
    assert len(logs) >= 5  # the simulator, the worker, the sink, the ingress, the broker
    for log in logs:
        assert password not in log.read_text(errors="replace"), log
