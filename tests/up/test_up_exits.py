"""``smslane up`` takes everything it started with it, however it ends: SIGHUP (a closed
terminal), SIGKILL, or a standard output nobody reads any more (``smslane up | head``).

Every test ends with no process of its ``SMSLANE_DATA_DIR`` left, and kills any it finds.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from schemas.settings import Settings
from smslane.kafka_local import LocalKafka
from tests.harness import free_port
from tests.up.test_up import REPO, Up, alive, own_broker_bootstrap, processes_with

pytestmark = pytest.mark.integration

READY = r"^Press Ctrl-C to stop everything\.$"


def leftovers(var: Path, pids: Iterable[int] = ()) -> set[int]:
    """Live processes of this ``up`` run: by environment, and among ``pids`` it printed."""
    return {pid for pid in pids if alive(pid)} | processes_with(f"SMSLANE_DATA_DIR={var}")


def wait_gone(var: Path, pids: Iterable[int], timeout_s: float = 60.0) -> set[int]:
    """Wait until nothing of this run is alive; what is still alive at the deadline."""
    deadline = time.monotonic() + timeout_s
    while (left := leftovers(var, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def describe(pids: Iterable[int]) -> str:
    """The command lines of ``pids``, for a failure message."""
    lines = []
    for pid in sorted(pids):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            lines.append(f"{pid}: {cmdline.decode(errors='replace')[:160]}")
    return "\n".join(lines)


def kill_all(var: Path, pids: Iterable[int] = ()) -> None:
    """After a failed test: SIGKILL whatever of this run survived, so nothing is orphaned."""
    for pid in leftovers(var, pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def printed_pids(output: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"\bpid (\d+)", output)}


@pytest.fixture
def quiet_up(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Up]:
    """``smslane up`` without --demo on the session broker; nothing it started outlives it."""
    running = Up(tmp_path, kafka_bootstrap, demo=False)
    try:
        yield running
    finally:
        running.kill()
        kill_all(running.var, printed_pids(running.output))


@pytest.mark.timeout(180)
def test_sighup_stops_everything_like_ctrl_c(quiet_up: Up) -> None:
    up = quiet_up
    up.wait_for(READY)
    pids = printed_pids(up.output)
    assert len(pids) == 4, up.output  # simulator, worker, sink, ingress
    assert up.stop(signal.SIGHUP) == 0, up.diagnostics()
    stops = re.findall(r"^  stopping (\S+)", up.output, re.MULTILINE)
    assert stops == ["ingress", "sink", "worker", "twilio-sim"], up.output
    assert up.output.rstrip().endswith("Stopped."), up.output
    assert not leftovers(up.var, pids)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", ["session broker", "own broker"])
def test_sigkill_takes_every_child_with_it(
    broker: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap
    if broker == "own broker":
        bootstrap = own_broker_bootstrap()
        cache = LocalKafka(Settings(kafka_bootstrap_servers=bootstrap, data_dir=tmp_path))
        if shutil.which("java") is None or not cache.artifacts_ok():
            pytest.skip("needs Java and the cached Kafka jars (smslane kafka start fetches them)")
    up = Up(tmp_path, bootstrap, own_broker=broker == "own broker", demo=False)
    try:
        up.wait_for(READY)
        pids = printed_pids(up.output)
        assert len(pids) == (5 if up.own_broker else 4), up.output
        assert all(alive(pid) for pid in pids)
        up.proc.kill()
        assert up.proc.wait(30) == -signal.SIGKILL
        # Every child gets SIGTERM at once: a worker whose broker stops at the same moment
        # waits out mode's 60 s shutdown timeout.
        left = wait_gone(up.var, pids, 90.0 if up.own_broker else 30.0)
        assert not left, f"still running after up was killed:\n{describe(left)}\n{up.output}"
    finally:
        up.kill()
        kill_all(up.var, printed_pids(up.output))


def up_command(root: Path, bootstrap: str) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and data dir of ``smslane up`` (no --demo) in ``root``,
    as :class:`tests.up.test_up.Up` runs it, for tests that wire its stdout themselves."""
    var = root / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSLANE_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "SMSLANE_DATA_DIR": str(var),
            "SMSLANE_HTTP_PORT": str(free_port()),
            "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SMSLANE_TOPIC_PREFIX": f"up{uuid.uuid4().hex[:8]}.",
        }
    )
    return [sys.executable, "-m", "smslane.cli", "up"], env, var


@pytest.mark.timeout(180)
def test_piped_into_head_stops_everything_without_a_traceback(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """``smslane up | head -n 3``: head leaves while ``up`` is still starting its children."""
    command, env, var = up_command(tmp_path, kafka_bootstrap)
    stderr_path = tmp_path / "up.stderr"
    with stderr_path.open("wb") as stderr:
        up = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert up.stdout is not None
        head = subprocess.run(["head", "-n", "3"], stdin=up.stdout, capture_output=True, timeout=60)
        up.stdout.close()  # head's end was the only reader left
        assert len(head.stdout.splitlines()) == 3
        code = up.wait(120)
        stderr_text = stderr_path.read_text(errors="replace")
        assert code == 0, stderr_text
        assert "Traceback" not in stderr_text and "BrokenPipeError" not in stderr_text, stderr_text
        assert "standard output is closed" in stderr_text, stderr_text
        left = wait_gone(var, set(), 30)
        assert not left, f"still running:\n{describe(left)}\n{stderr_text}"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
        kill_all(var)


@pytest.mark.timeout(180)
def test_a_reader_that_goes_away_while_up_is_quiet_stops_everything(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """``smslane up | less``, then ``q``: nothing is printed any more, yet ``up`` notices."""
    command, env, var = up_command(tmp_path, kafka_bootstrap)
    stderr_path = tmp_path / "up.stderr"
    with stderr_path.open("wb") as stderr:
        up = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    pids: set[int] = set()
    try:
        assert up.stdout is not None
        for line in up.stdout:  # bounded by the test's timeout
            pids |= printed_pids(line)
            if re.match(READY, line.rstrip("\n")):
                break
        assert len(pids) == 4, pids
        up.stdout.close()
        code = up.wait(60)
        stderr_text = stderr_path.read_text(errors="replace")
        assert code == 0, stderr_text
        assert "Traceback" not in stderr_text, stderr_text
        left = wait_gone(var, pids, 30)
        assert not left, f"still running:\n{describe(left)}\n{stderr_text}"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
        kill_all(var, pids)
