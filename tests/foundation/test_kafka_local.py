"""`smslane kafka`: a real broker from Maven artifacts, started once, stopped cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.settings import Settings
from smslane.kafka_local import LocalKafka
from tests.harness import free_port

pytestmark = pytest.mark.integration


def kafka_cli(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smslane.cli", "kafka", action],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_start_status_stop_and_no_second_broker(tmp_path: Path) -> None:
    port = free_port(span=2)  # the broker's port and its controller's
    env = {
        "SMSLANE_DATA_DIR": str(tmp_path / "var"),
        "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
    }
    started = kafka_cli("start", env)
    try:
        assert started.returncode == 0, started.stderr
        assert "ready" in started.stderr and "broker.log" in started.stderr
        pid = int((tmp_path / "var" / "kafka" / "broker.pid").read_text())
        status = kafka_cli("status", env)
        assert status.returncode == 0 and f"pid {pid}" in status.stdout
        again = kafka_cli("start", env)
        assert again.returncode == 0 and "already running" in again.stderr
        assert int((tmp_path / "var" / "kafka" / "broker.pid").read_text()) == pid
    finally:
        stopped = kafka_cli("stop", env)
    assert stopped.returncode == 0, stopped.stderr
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"kafka.Kafka" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    status = kafka_cli("status", env)
    assert status.returncode == 3 and "not running" in status.stdout


def test_a_corrupt_artifact_cache_is_fetched_again(tmp_path: Path) -> None:
    settings = Settings(kafka_home=tmp_path / "home", data_dir=tmp_path / "var")
    lines: list[str] = []
    broker = LocalKafka(settings, progress=lines.append)
    broker.resolve()
    assert broker.artifacts_ok()
    jar = next(broker.libs.glob("kafka-clients-*.jar"))
    jar.write_bytes(jar.read_bytes()[:1000])  # a half-downloaded jar
    assert not broker.artifacts_ok()
    lines.clear()
    broker.resolve()
    assert broker.artifacts_ok()
    assert any("Resolving Apache Kafka" in line for line in lines)


def test_missing_maven_is_explained_in_one_line(tmp_path: Path) -> None:
    env = {
        "SMSLANE_KAFKA_HOME": str(tmp_path / "empty-cache"),
        "SMSLANE_DATA_DIR": str(tmp_path / "var"),
        "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "PATH": str(Path(sys.executable).parent),
    }
    done = kafka_cli("start", env)
    assert done.returncode == 1
    assert "mvn" in done.stderr and "install" in done.stderr
    assert "Traceback" not in done.stderr
