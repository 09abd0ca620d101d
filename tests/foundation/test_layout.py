"""The topic catalog, docker-compose.yml, the CLI's help and the import contracts hold together."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from schemas.settings import Settings
from schemas.topics import Topics

ROOT = Path(__file__).resolve().parents[2]


def test_every_topic_is_produced_and_consumed_somewhere() -> None:
    sources = "\n".join(
        p.read_text() for pkg in ("ingress", "streams", "sinks") for p in (ROOT / pkg).rglob("*.py")
    )
    for spec in Topics.all():
        attribute = next(k for k, v in vars(Topics).items() if v is spec)
        assert f"Topics.{attribute}" in sources, f"{spec.base_name} is used nowhere"


def test_topic_names_are_unique_and_downstream_is_sms_status() -> None:
    names = [t.name() for t in Topics.all()]
    assert len(names) == len(set(names))
    assert Topics.STATUS.name() == "sms.status"


def test_docker_compose_parses_and_uses_the_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "worker", "sink", "ingress", "twilio-sim"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    known = {f"SMSLANE_{name.upper()}" for name in Settings.model_fields}
    for name in ("worker", "sink", "ingress"):
        env = services[name]["environment"]
        assert set(env) <= known, set(env) - known
        assert env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert services[name]["command"] == ["smslane", name]


def test_docker_compose_keeps_state_and_publishes_metrics() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    kept = {
        "kafka": services["kafka"]["environment"]["KAFKA_LOG_DIRS"],
        "postgres": "/var/lib/postgresql/data",
        "worker": services["worker"]["environment"]["SMSLANE_DATA_DIR"],
    }
    for name, path in kept.items():
        volume, _, mounted = services[name]["volumes"][0].partition(":")
        assert mounted == path and volume in compose["volumes"], name
    worker = services["worker"]["environment"]
    assert worker["SMSLANE_HTTP_HOST"] == "0.0.0.0"
    port = worker["SMSLANE_WORKER_METRICS_PORT"]
    assert f"{port}:{port}" in services["worker"]["ports"]


def test_docker_compose_has_no_default_secret() -> None:
    """Every secret comes from the operator: ``${VAR:?message}``, never ``${VAR:-default}``."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    ingress = services["ingress"]["environment"]
    for variable in ("SMSLANE_API_KEYS", "SMSLANE_ADMIN_API_KEYS"):
        assert ingress[variable].startswith(f"${{{variable}:?set {variable} "), variable
        # Only the ingress checks API keys: no other process is given them.
        assert all(variable not in services[n]["environment"] for n in ("worker", "sink"))
    for name in ("sink", "ingress"):
        url = services[name]["environment"]["SMSLANE_DATABASE_URL"]
        assert "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD " in url, name
    # The worker never uses the store (nor does the simulator): no database password there.
    assert all("SMSLANE_DATABASE_URL" not in services[n]["environment"] for n in ("worker",))
    for name in ("worker", "ingress"):
        assert services[name]["environment"]["SMSLANE_SECRET_KEYS"].startswith(
            "${SMSLANE_SECRET_KEYS:?set "
        )
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD:?set ")
    assert ":-" not in (ROOT / "docker-compose.yml").read_text()


def test_the_image_installs_the_locked_versions_of_every_runtime_package() -> None:
    """No Docker engine here: the Dockerfile is read. It must install from uv.lock with
    ``--locked`` (a lock that no longer matches pyproject.toml fails the build), copy every
    runtime package the CLI imports, and put the environment it made on PATH."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    copied = {line.split()[1] for line in lines if line.startswith("COPY ")}
    assert "uv.lock" in " ".join(line for line in lines if line.startswith("COPY "))
    packages = {"schemas", "ingress", "streams", "feeds", "store", "sinks", "smslane"}
    assert packages | {"twilio_sim"} <= copied
    (sync,) = [line for line in lines if "uv sync" in line]
    assert "--locked" in sync and "--no-dev" in sync and "--no-editable" in sync
    assert not [line for line in lines if "pip install" in line and "uv==" not in line]
    assert any(line.startswith("ENV PATH=/app/.venv/bin:") for line in lines)


def test_help_explains_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smslane.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for command in ("up", "kafka", "worker", "sink", "ingress", "twilio-sim"):
        assert command in done.stdout


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts: the package arrows of the architecture."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    lint_imports = lint_imports or shutil.which("lint-imports")
    assert lint_imports, "lint-imports not found: pip install -e '.[dev]'"
    done = subprocess.run(
        [lint_imports, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout
