"""Child processes of ours (``smslane <command>``), each with its log in a file."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from feeds.secret_box import new_key

_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the kernel sends ``sig`` to the child when this process
    dies, by SIGKILL too; None where Linux's ``prctl`` is not available. Call it from the
    main thread (RuntimeError otherwise), in the process that then starts the child.

    Why ``PR_SET_PDEATHSIG`` rather than a watchdog that exits when a pipe from the parent
    closes: a pipe needs code in every child to watch it (the Kafka broker is a JVM we do not
    control) or a wrapper process per child; the death signal is set by the kernel, survives
    ``exec`` and costs nothing. Its edges, and how they are handled:

    - It fires when the *thread* that forked the child exits, not the process: a child
      started from a short-lived thread would be killed with that thread. So a child that
      dies with its parent is started from the main thread only (checked here), which
      lives exactly as long as the process.
    - The parent may die between ``fork`` and ``prctl``: the child then sees another parent
      (``getppid``) and exits at once instead of living on as an orphan.
    - It applies to the direct child only (a ``fork`` clears it): children are exec'ed
      directly, never through a shell, so the signal reaches the real process.
    - ``start_new_session`` runs ``setsid`` in the child just before ``preexec_fn``; a new
      session changes nothing here (the death signal follows the parent, not the session),
      and it keeps the terminal's Ctrl-C and hang-up away from the children: the parent
      handles both and stops them in order.
    - ``preexec_fn`` runs between ``fork`` and ``exec``: this one calls a ``prctl`` looked
      up before the fork and ``getppid``, nothing that takes a lock.

    ``sig`` is SIGTERM so that every child stops as on a normal stop (each of ours does).
    Unlike the ordered stop, every child gets it at the same moment: a worker whose broker
    stops with it waits out its shutdown timeout (mode's 60 s) before it exits.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "a child that dies with its parent is started from the main thread "
            "(the death signal follows the thread that forked it)"
        )
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def set_death_signal() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the death signal was armed

    return set_death_signal


class Child:
    """One ``python -m smslane.cli ARGS`` process in its own session, logging to a file.

    ``die_with_parent``: the child gets SIGTERM when this process dies, however it dies
    (:func:`parent_death_signal`, which says why it must then be started from the main
    thread).
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        die_with_parent: bool = False,
    ) -> None:
        self.name, self.args, self.env = name, args, dict(env)
        self.die_with_parent = die_with_parent
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        preexec = parent_death_signal() if self.die_with_parent else None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smslane.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=preexec,
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


#: Where :func:`free_port` starts looking (below it: well-known services' fixed ports).
_FIRST_FREE_PORT = 20000
_EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1", span: int = 1) -> int:
    """A TCP port on ``host`` that nothing listens on right now, for a process started later;
    with ``span`` > 1 the first of that many neighbouring ones (a local broker listens on its
    port and the next, for its controller), all free and all reserved.

    Not a port the kernel picks (``bind(0)``): that one is *ephemeral*, and once released
    any outgoing connection on the machine (a Kafka client, an HTTP pool) may take it as its
    local port before our process binds it — the ingress of a test stack, started seconds
    later, then exits with "address already in use". So the port is drawn at random below
    the kernel's ephemeral range, which outgoing connections never use (above 20000 where
    that range starts lower), checked by :func:`port_free`, and never handed out twice by
    this process.
    """
    start, end = port_range()
    for _ in range(100):
        first = random.randrange(start, end - span + 1)
        ports = set(range(first, first + span))
        if not ports & _handed_out and all(port_free(host, port) for port in ports):
            _handed_out.update(ports)
            return first
    after = f" with the next {span - 1} free too" if span > 1 else ""
    raise OSError(f"no free TCP port found between {start} and {end}{after}")


def port_range() -> tuple[int, int]:
    """Where :func:`free_port` draws from (start inclusive, end exclusive): from
    :data:`_FIRST_FREE_PORT` up to the kernel's ephemeral range, or to 65535 where that
    range starts lower."""
    low = _ephemeral_low()
    return _FIRST_FREE_PORT, low if low > _FIRST_FREE_PORT else 65536


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound right now (nothing listens there)."""
    if not 0 < port < 65536:
        return False
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (49152, IANA's, where unknown)."""
    try:
        return int(_EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


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
    data directory, SQLite file (unless ``database_url``), ports, Twilio simulator and a
    fresh secret key;
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
            "SMSLANE_SECRET_KEYS": new_key(),  # a fresh test key per stack
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"SMSLANE_{k.upper()}": v for k, v in settings.items()})
    return env
