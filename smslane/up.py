"""``smslane up``: the whole system on this machine, started in order, stopped in reverse."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from schemas.settings import Settings
from smslane.kafka_local import KafkaError, LocalKafka
from smslane.processes import Child, ChildDied, wait_until

SIM_ACCOUNT_SID = "AC" + "d" * 32
SIM_AUTH_TOKEN = "demo-auth-token-not-a-secret"
SIM_SERVICE_SID = "MG" + "d" * 32
SIM_SENDERS = ("+14155550100", "+12125550100", "+13125550100")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def run_up(settings: Settings, *, demo: bool) -> int:
    """Start everything, print how to use it, wait for Ctrl-C or SIGTERM, stop everything."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    var = settings.data_dir.resolve()
    log_dir = var / "log"
    env = dict(os.environ)
    use_simulator = "SMSLANE_TWILIO_API_BASE_URL" not in os.environ
    api_key = settings.api_keys[0] if settings.api_keys else "dev_" + secrets.token_urlsafe(18)
    admin_key = (
        settings.admin_api_keys[0]
        if settings.admin_api_keys
        else "admin_" + secrets.token_urlsafe(18)
    )
    env.setdefault("SMSLANE_API_KEYS", api_key)
    env.setdefault("SMSLANE_ADMIN_API_KEYS", admin_key)
    env["SMSLANE_DATA_DIR"] = str(var)
    children: list[Child] = []
    broker: LocalKafka | None = None
    base_url = f"http://{settings.http_host}:{settings.http_port}"
    try:
        _say(f"[1/5] Kafka at {settings.kafka_bootstrap_servers}")
        broker = LocalKafka(settings, progress=lambda line: _say(f"      {line}"))
        status = broker.start()
        if status.pid is None:
            broker = None  # someone else's broker: not ours to stop
        if use_simulator:
            sim_port = settings.http_port + 1000
            sim_url = f"http://127.0.0.1:{sim_port}"
            env["SMSLANE_TWILIO_API_BASE_URL"] = sim_url
            env["SMSLANE_TWILIO_LOOKUP_BASE_URL"] = sim_url
            _say(f"[2/5] Twilio simulator at {sim_url} (no real Twilio configured)")
            sim = Child(
                "twilio-sim",
                [
                    "twilio-sim", "--port", str(sim_port),
                    "--account", f"{SIM_ACCOUNT_SID}:{SIM_AUTH_TOKEN}",
                    "--service", f"{SIM_SERVICE_SID}:{','.join(SIM_SENDERS)}",
                ],
                env, log_dir,
            )  # fmt: skip
            children.append(sim)
            sim.start()
            wait_until(lambda: sim.check_alive() or _http_ok(f"{sim_url}/_sim/health"), 60, "sim")
        else:
            _say("[2/5] Twilio at " + env["SMSLANE_TWILIO_API_BASE_URL"])
        ready_file = var / "worker.ready"
        ready_file.unlink(missing_ok=True)
        worker = Child("worker", ["worker"], env, log_dir)
        children.append(worker)
        _say(f"[3/5] worker (log: {worker.log_path})")
        worker.start()
        wait_until(lambda: worker.check_alive() or ready_file.exists(), 120, "the worker")
        sink = Child("sink", ["sink"], env, log_dir)
        children.append(sink)
        _say(f"[4/5] sink into {settings.database_url} (log: {sink.log_path})")
        sink.start()
        ingress = Child("ingress", ["ingress"], env, log_dir)
        children.append(ingress)
        _say(f"[5/5] ingress at {base_url} (log: {ingress.log_path})")
        ingress.start()
        wait_until(
            lambda: ingress.check_alive() or sink.check_alive() or _http_ok(f"{base_url}/readyz"),
            60,
            "the ingress",
        )
        use_case_id = "<use_case_id>"
        if demo and use_simulator:
            from smslane.demo import create_demo

            use_case_id = create_demo(base_url, admin_key, SIM_ACCOUNT_SID, SIM_AUTH_TOKEN,
                                      SIM_SERVICE_SID, SIM_SENDERS)  # fmt: skip
        _print_welcome(base_url, api_key, admin_key, use_case_id, settings)
        while True:
            for child in children:
                child.check_alive()
            time.sleep(0.5)
    except _Stop:
        _say("\nStopping...")
        return _stop_all(children, broker)
    except ChildDied as died:
        _say(f"\n{died}\nStopping the others...")
        _stop_all(children, broker)
        return 1
    except (KafkaError, TimeoutError) as exc:
        _say(f"\nsmslane up: {exc}")
        for child in children:
            if not child.alive() or isinstance(exc, TimeoutError):
                _say(f"--- last lines of {child.log_path} ---\n{child.tail(15)}")
        _stop_all(children, broker)
        return 1


def _stop_all(children: list[Child], broker: LocalKafka | None) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for child in reversed(children):
        _say(f"  stopping {child.name}")
        child.stop()
    if broker is not None:
        broker.stop()
    _say("Stopped.")
    return 0


def _print_welcome(
    base_url: str, api_key: str, admin_key: str, use_case_id: str, settings: Settings
) -> None:
    payload = (
        f'{{"use_case_id": "{use_case_id}", "to_phone_number": "+14155550123", '
        '"message": "Hello from smslane"}'
    )
    _say(
        f"""
smslane is up.
  API:            {base_url}
  OpenAPI docs:   {base_url}/docs
  API key:        {api_key}
  Admin API key:  {admin_key}
  Logs:           {Path(settings.data_dir).resolve() / "log"}

Send a first message:
  curl -s -X POST {base_url}/v1/sms/ \\
    -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
    -d '{payload}'

Then follow it: curl -s {base_url}/v1/sms/<id> -H 'Authorization: Bearer {api_key}'
Press Ctrl-C to stop everything."""
    )
