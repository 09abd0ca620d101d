"""``smslane up`` with a security protocol other than PLAINTEXT: the cluster is the user's
own, so it never starts a local broker, and says why when none answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import free_port
from tests.up.test_up_exits import up_command

PASSWORD = "up-password-never-shown"


def test_up_on_a_secured_protocol_starts_no_local_broker(tmp_path: Path) -> None:
    command, env, var = up_command(tmp_path, f"127.0.0.1:{free_port()}")
    env.update(
        SMSLANE_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        SMSLANE_KAFKA_SASL_USERNAME="someone",
        SMSLANE_KAFKA_SASL_PASSWORD=PASSWORD,
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "SMSLANE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT" in said
    assert "starts no local broker" in said
    assert not (var / "kafka").exists()
    assert PASSWORD not in said
