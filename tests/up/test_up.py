"""``smslane up --demo`` as a user runs it: a real subprocess, its printed curl, then SIGTERM.

Two paths: ``up`` on the session broker (it must not start another), and ``up`` starting a
broker of its own (whose Java process must be gone after the stop, like every other child).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.settings import Settings
from smslane.kafka_local import LocalKafka
from smslane.processes import wait_until
from smslane.up import SIM_AUTH_TOKEN, SIM_SENDERS
from tests.harness import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class Up:
    """``python -m smslane.cli up --demo`` with stdout collected line by line (not a TTY)."""

    def __init__(
        self, root: Path, bootstrap: str, *, own_broker: bool = False, demo: bool = True
    ) -> None:
        self.root, self.own_broker = root, own_broker
        self.var = root / "var"
        self.http_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSLANE_")}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
                "PYTHONUNBUFFERED": "1",
                "SMSLANE_DATA_DIR": str(self.var),
                "SMSLANE_HTTP_PORT": str(self.http_port),
                "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "SMSLANE_TOPIC_PREFIX": f"up{uuid.uuid4().hex[:8]}.",
            }
        )
        self.stderr_path = root / "up.stderr"
        self.lines: list[str] = []
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smslane.cli", "up", *(["--demo"] if demo else [])],
                cwd=root, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
            )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float = 150.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output, re.MULTILINE)
            if match:
                return match
            if self.proc.poll() is not None:
                self._reader.join(5)
                match = re.search(pattern, self.output, re.MULTILINE)
                if match:
                    return match
                pytest.fail(f"smslane up exited ({self.proc.returncode}):\n{self.diagnostics()}")
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} in the output of smslane up:\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        logs = [
            f"--- {p.name} ---\n" + "\n".join(p.read_text(errors="replace").splitlines()[-30:])
            for p in sorted((self.var / "log").glob("*.log"))
        ]
        stderr = self.stderr_path.read_text(errors="replace")[-3000:]
        return f"{self.output}\n--- stderr ---\n{stderr}\n" + "\n".join(logs)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 120.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout_s)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """Last resort in a failed test: the children are in their own sessions."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        for pid in processes_with(f"SMSLANE_DATA_DIR={self.var}"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def processes_with(needle: str) -> set[int]:
    """Pids of live processes whose environment holds ``needle`` (our unique data dir)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return True


def parse_curl(output: str) -> tuple[str, dict[str, str], str]:
    """URL, headers and body of the printed ``curl`` command, read as a shell would."""
    match = re.search(r"^\s*(curl -s -X POST .*?-d .*?)$", output, re.MULTILINE | re.DOTALL)
    assert match, output
    words = shlex.split(match.group(1).replace("\\\n", " "))
    assert words[:4] == ["curl", "-s", "-X", "POST"], words
    url, headers, body = words[4], {}, ""
    rest = iter(words[5:])
    for flag in rest:
        value = next(rest)
        if flag == "-H":
            name, _, header_value = value.partition(":")
            headers[name.strip()] = header_value.strip()
        else:
            assert flag == "-d", words
            body = value
    return url, headers, body


def wait_delivered(client: httpx.Client, record_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def delivered() -> dict[str, Any] | None:
        nonlocal last
        answer = client.get(f"/v1/sms/{record_id}")
        if answer.status_code == 200:
            last = answer.json()
            return last if last["status"] == "delivered" else None
        return None

    try:
        return wait_until(delivered, timeout_s, f"{record_id} delivered", interval_s=0.3)
    except TimeoutError:
        pytest.fail(f"{record_id} did not reach delivered: {last}")


def own_broker_bootstrap() -> str:
    """A free port pair (broker, controller) for a broker that ``up`` starts itself."""
    for _ in range(50):
        port = free_port()
        if port < 65535:
            with contextlib.suppress(OSError), socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 1))
                return f"127.0.0.1:{port}"
    raise RuntimeError("no free port pair")


@pytest.fixture(params=["session broker", "own broker"])
def up(request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path: Path) -> Any:
    if request.param == "own broker":
        bootstrap = own_broker_bootstrap()
        cache = LocalKafka(Settings(kafka_bootstrap_servers=bootstrap, data_dir=tmp_path))
        if shutil.which("java") is None or not cache.artifacts_ok():
            pytest.skip("needs Java and the cached Kafka jars (smslane kafka start fetches them)")
    else:
        bootstrap = kafka_bootstrap
    running = Up(tmp_path, bootstrap, own_broker=request.param == "own broker")
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.kill()


@pytest.mark.timeout(300)
def test_up_demo_prints_a_curl_that_works_and_stops_everything(up: Up) -> None:
    up.wait_for(r"^Press Ctrl-C to stop everything\.$")
    out = up.output
    api_key = up.wait_for(r"^  API key:\s+(\S+)$").group(1)
    admin_key = up.wait_for(r"^  Admin API key:\s+(\S+)$").group(1)
    use_case_id = up.wait_for(r"^  Use case id:\s+([0-9a-f-]{36})$").group(1)
    base_url = f"http://127.0.0.1:{up.http_port}"
    if up.own_broker:
        java = int(up.wait_for(r"Starting Kafka \S+ \(pid (\d+)\)").group(1))
        assert b"kafka.Kafka" in Path(f"/proc/{java}/cmdline").read_bytes()
    else:
        assert "already answers" in out and "Starting Kafka" not in out, out

    # The printed request, exactly: same URL, headers and JSON body.
    url, headers, body = parse_curl(out)
    assert url == f"{base_url}/v1/sms/"
    assert headers["Authorization"] == f"Bearer {api_key}"
    assert f'"use_case_id": "{use_case_id}"' in body
    sent = httpx.post(url, headers=headers, content=body, timeout=30.0)
    assert sent.status_code == 201, sent.text
    record = sent.json()
    assert record["use_case_id"] == use_case_id and record["status"] == "pending"
    if shutil.which("curl"):  # and through a shell, as a person would paste it
        command = re.search(r"^\s*(curl -s -X POST .*?-d .*?)$", out, re.M | re.S)
        assert command is not None
        pasted = subprocess.run(
            ["bash", "-c", command.group(1)], capture_output=True, text=True, timeout=60
        )
        assert '"status":"pending"' in pasted.stdout, pasted.stdout + pasted.stderr

    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10.0
    ) as client:
        delivered = wait_delivered(client, record["id"])
    assert delivered["message_sid"] == record["message_sid"]
    # Not a TTY: the live view prints one plain line per status change instead of a table.
    up.wait_for(rf"^sms {record['id']} {record['message_sid']} to \S+: .*delivered$", 30)
    assert "\x1b[" not in up.output

    metrics = re.search(r"Metrics:\s+(\S+) \(ingress\), (\S+) \(worker\)", up.output)
    assert metrics is not None
    assert "smslane_http_requests_total" in httpx.get(metrics.group(1)).text
    assert "smslane_worker_callbacks_total" in httpx.get(metrics.group(2)).text

    # A reply through the simulator reaches the inbound URL up printed, and is listed.
    inbound_url = up.wait_for(r"^  Inbound URL:\s+(\S+)$").group(1)
    assert inbound_url == f"{base_url}/v1/webhook/twilio/sms-inbound"
    sim_url = up.wait_for(r"Twilio simulator at (\S+),").group(1)
    reply = {"from": record["to_number"], "to": SIM_SENDERS[0], "body": "Thanks!"}
    texted = httpx.post(f"{sim_url}/_sim/inbound", json=reply, timeout=30.0).json()
    assert texted["webhook"]["url"] == inbound_url and texted["webhook"]["status"] == 200
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10.0
    ) as client:
        wait_until(lambda: client.get("/v1/sms/inbound/").json()["items"], 30, "the reply listed")
        (listed,) = client.get("/v1/sms/inbound/").json()["items"]
    assert (listed["body"], listed["use_case_id"]) == ("Thanks!", use_case_id)

    printed = {int(pid) for pid in re.findall(r"\bpid (\d+)", up.output)}
    ours = processes_with(f"SMSLANE_DATA_DIR={up.var}") | printed
    assert len(printed) >= 4, up.output  # simulator, worker, sink, ingress (+ Kafka)
    assert all(alive(pid) for pid in printed)

    assert up.stop() == 0, up.diagnostics()
    stops = re.findall(r"^  stopping (\S+)", up.output, re.MULTILINE)
    assert stops == ["ingress", "sink", "worker", "twilio-sim"], up.output
    assert up.output.rstrip().endswith("Stopped."), up.output
    left = {pid for pid in ours if alive(pid)} | processes_with(f"SMSLANE_DATA_DIR={up.var}")
    assert not left, f"still running: {left}\n{up.output}"

    # No secret in any log of any process (Kafka's *.log data segments are not logs).
    log_files = [*(up.var / "log").glob("*.log"), up.var / "kafka" / "broker.log", up.stderr_path]
    logs = [p.read_text(errors="replace") for p in log_files if p.exists()]
    assert len(logs) >= 5
    for secret in (api_key, admin_key, SIM_AUTH_TOKEN):
        assert not any(secret in text for text in logs), secret


@pytest.mark.timeout(180)
def test_up_without_demo_prints_a_placeholder_and_stops_on_ctrl_c(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    up = Up(tmp_path, kafka_bootstrap, demo=False)
    try:
        up.wait_for(r"^Press Ctrl-C to stop everything\.$")
        assert '"use_case_id": "<use_case_id>"' in up.output
        api_key = up.wait_for(r"^  API key:\s+(\S+)$").group(1)
        answer = httpx.get(
            f"http://127.0.0.1:{up.http_port}/v1/sms/",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10.0,
        )
        assert answer.status_code == 200 and answer.json()["items"] == []
        time.sleep(1.5)
        assert not re.search(r"^sms ", up.output, re.MULTILINE)  # no live view without --demo
        printed = {int(pid) for pid in re.findall(r"\bpid (\d+)", up.output)}
        assert up.stop(signal.SIGINT) == 0, up.diagnostics()
        assert up.output.rstrip().endswith("Stopped.")
        assert not {pid for pid in printed if alive(pid)}
        assert not processes_with(f"SMSLANE_DATA_DIR={up.var}")
    finally:
        if up.proc.poll() is None:
            up.kill()
