"""``parent_death_signal`` alone: a child outlives no SIGKILL of the process that started it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from smslane.processes import parent_death_signal
from tests.up.test_up import REPO, alive

# A parent that starts ``sleep`` as smslane up starts its children, prints its pid, waits.
PARENT = """
import subprocess, sys, time
from smslane.processes import parent_death_signal
child = subprocess.Popen(
    ["sleep", "120"], preexec_fn=parent_death_signal(), start_new_session=True
)
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_gets_sigterm_when_its_parent_is_killed() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def test_only_the_main_thread_may_arm_it() -> None:
    """The death signal follows the thread that forked the child: a worker thread must not."""
    errors: list[BaseException] = []

    def arm() -> None:
        try:
            parent_death_signal()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=arm)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])
