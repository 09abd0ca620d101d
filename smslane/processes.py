"""Child processes of ours (``smslane <command>``), each with its log in a file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import typing
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path


class Child:
    """One ``python -m smslane.cli ARGS`` process in its own session, logging to a file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env = name, args, dict(env)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smslane.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def check_alive(self) -> bool:
        """Raise :class:`ChildDied` if the child has exited; False otherwise (for polling)."""
        if self.proc is not None and not self.alive():
            raise ChildDied(self)
        return False

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Signal the child's whole process group and wait; SIGKILL after ``timeout_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class ChildDied(RuntimeError):
    def __init__(self, child: Child) -> None:
        code = child.proc.returncode if child.proc else None
        super().__init__(
            f"{child.name} exited (status {code}); last lines of {child.log_path}:\n{child.tail()}"
        )
        self.child = child


T = typing.TypeVar("T")


def wait_until(check: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy, and return that; TimeoutError naming
    ``what`` after ``timeout_s``. :func:`wait_until_async` is the same for a coroutine."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


async def wait_until_async(
    check: Callable[[], Awaitable[T]], timeout_s: float, what: str, interval_s: float = 0.1
) -> T:
    """Await ``check()`` until it returns something truthy, and return that; TimeoutError
    naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval_s)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(
    root: Path,
    *,
    bootstrap: str,
    prefix: str,
    http_port: int,
    sim_url: str,
    api_key: str,
    admin_key: str,
    database_url: str | None = None,
    **settings: str,
) -> dict[str, str]:
    """The environment of one isolated set of smslane processes (test and benchmark stacks).

    This process's environment without any ``SMSLANE_*``, then the stack's own topic prefix,
    data directory, SQLite file (unless ``database_url``), ports and Twilio simulator;
    ``settings`` (lower-case setting names) come last and win.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSLANE_")}
    base_url = f"http://127.0.0.1:{http_port}"
    env.update(
        {
            "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SMSLANE_TOPIC_PREFIX": prefix,
            "SMSLANE_DATA_DIR": str(root / "var"),
            "SMSLANE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{root / 'smslane.db'}",
            "SMSLANE_HTTP_HOST": "127.0.0.1",
            "SMSLANE_HTTP_PORT": str(http_port),
            "SMSLANE_PUBLIC_BASE_URL": base_url,
            "SMSLANE_TWILIO_API_BASE_URL": sim_url,
            "SMSLANE_TWILIO_LOOKUP_BASE_URL": sim_url,
            "SMSLANE_API_KEYS": api_key,
            "SMSLANE_ADMIN_API_KEYS": admin_key,
            "SMSLANE_WORKER_METRICS_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"SMSLANE_{k.upper()}": v for k, v in settings.items()})
    return env
