"""``smslane up``: the whole system on this machine, started in order, stopped in reverse.

Everything it started stops with it, however it ends: Ctrl-C, SIGTERM or SIGHUP (a closed
terminal) stop the children in order; a standard output nobody reads any more
(``smslane up | head``) does the same; if ``up`` itself is killed (SIGKILL), the kernel
sends each child SIGTERM (:func:`smslane.processes.parent_death_signal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import select
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from feeds.kafka_check import WrongConnectionSetting, check_connection
from feeds.secret_box import new_key
from schemas.settings import INBOUND_WEBHOOK_PATH, Settings
from smslane.kafka_local import KafkaError, LocalKafka
from smslane.processes import Child, ChildDied, free_port, port_free, wait_until

SIM_ACCOUNT_SID = "AC" + "d" * 32
SIM_AUTH_TOKEN = "demo-auth-token-not-a-secret"
SIM_SERVICE_SID = "MG" + "d" * 32
SIM_SENDERS = ("+14155550100", "+12125550100", "+13125550100")
DEMO_TO = "+14155550123"
#: With --demo, the simulator sends scheduled messages this many times sooner: the demo's
#: reminder, scheduled 16 minutes ahead, goes out 16 seconds later.
DEMO_TIME_SCALE = 60
#: With --demo, the simulator's callbacks come a second apart so the live view shows each one.
DEMO_CALLBACK_DELAY_MS = 1000


#: The signals that stop everything in order; SIGHUP is a closed terminal.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


class _Stop(Exception):
    pass


class _OutputClosed(_Stop):
    """Standard output has no reader any more: stop as if asked to."""


def _say(line: str) -> None:
    """Print ``line``; raise :class:`_OutputClosed` the first time standard output is gone."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError as exc:
        if not _output_gone(exc):
            raise
        _detach_stdout()
        raise _OutputClosed() from exc


def _say_quietly(line: str) -> None:
    """:func:`_say` while stopping: a closed output must not cut the stop short."""
    with contextlib.suppress(_OutputClosed):
        _say(line)


def _output_gone(exc: OSError) -> bool:
    """A write failed because nobody reads: a closed pipe (EPIPE) or a hung-up terminal."""
    return isinstance(exc, BrokenPipeError) or exc.errno == errno.EIO


def _stdout_closed() -> bool:
    """True once the reader of a piped stdout has gone (or a terminal hung up), checked
    without writing: ``smslane up | less`` then ``q`` stops everything while nothing prints."""
    if sys.stdout is None:
        return False
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(events & _GONE for _, events in poller.poll(0))


def _detach_stdout() -> None:
    """Point stdout at /dev/null: what is still printed (and the final flush at exit) goes
    nowhere instead of raising BrokenPipeError again."""
    with contextlib.suppress(OSError):
        sys.stderr.write("smslane up: standard output is closed; stopping everything\n")
        sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Once: a second Ctrl-C must not interrupt the orderly stop that the first one starts.
    _ignore_signals()
    raise _Stop()


def _ignore_signals() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _pick_port(host: str, preferred: int) -> int:
    """``preferred`` when it is free, otherwise another free one (:func:`free_port`)."""
    if port_free(host, preferred):
        return preferred
    return free_port(host)


class _Up:
    """One run of ``smslane up``: its environment, its children, one method per step."""

    def __init__(self, settings: Settings, *, demo: bool) -> None:
        self.settings, self.demo = settings, demo
        self.var = settings.data_dir.resolve()
        self.log_dir = self.var / "log"
        self.use_simulator = "SMSLANE_TWILIO_API_BASE_URL" not in os.environ
        self.api_key = (
            settings.api_keys[0] if settings.api_keys else "dev_" + secrets.token_urlsafe(18)
        )
        self.admin_key = (
            settings.admin_api_keys[0]
            if settings.admin_api_keys
            else "admin_" + secrets.token_urlsafe(18)
        )
        self.base_url = f"http://{settings.http_host}:{settings.http_port}"
        self.metrics_port = settings.worker_metrics_port
        #: What ``up`` says about the secret key (set when it uses the development key).
        self.key_note: str | None = None
        self.env = self._environment()
        #: Twilio's incoming-message webhook (on the public base URL, like status callbacks).
        self.inbound_url = self.env["SMSLANE_PUBLIC_BASE_URL"] + INBOUND_WEBHOOK_PATH
        self.children: list[Child] = []
        self.broker: LocalKafka | None = None

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("SMSLANE_API_KEYS", self.api_key)
        env.setdefault("SMSLANE_ADMIN_API_KEYS", self.admin_key)
        # Twilio's callbacks must reach this ingress, whatever port it was given.
        env.setdefault("SMSLANE_PUBLIC_BASE_URL", self.base_url)
        env.setdefault("SMSLANE_DATABASE_URL", f"sqlite+aiosqlite:///{self.var / 'smslane.db'}")
        if "SMSLANE_WORKER_METRICS_PORT" not in os.environ:
            self.metrics_port = _pick_port(self.settings.http_host, self.metrics_port)
            env["SMSLANE_WORKER_METRICS_PORT"] = str(self.metrics_port)
        env["SMSLANE_DATA_DIR"] = str(self.var)
        if not env.get("SMSLANE_SECRET_KEYS"):
            env["SMSLANE_SECRET_KEYS"] = self._dev_secret_key()
        return env

    def _dev_secret_key(self) -> str:
        """The development key in ``<data dir>/secret.key`` (mode 0600), made on first use."""
        path = self.var / "secret.key"
        if path.exists():
            self.key_note = f"Secret key: using {path} (development key; SMSLANE_SECRET_KEYS unset)"
            return path.read_text().strip()
        self.var.mkdir(parents=True, exist_ok=True)
        key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        self.key_note = f"Secret key: created {path} (development key; SMSLANE_SECRET_KEYS unset)"
        return key

    def run(self) -> int:
        """Start everything, print how to use it, wait for Ctrl-C, SIGTERM, SIGHUP or a
        closed standard output, stop everything."""
        for signum in _STOP_SIGNALS:
            signal.signal(signum, _on_signal)
        code = 1
        try:
            try:
                self._start_all()
                _watch(self.children, self.base_url, self.api_key, demo=self.demo)
            except _Stop:
                code = 0
                _say_quietly("\nStopping...")
            except ChildDied as died:
                _say_quietly(f"\n{died}\nStopping the others...")
            except (KafkaError, TimeoutError, httpx.HTTPError) as exc:
                self._report(exc)
        except _Stop:
            pass  # a signal while a failure was being reported: stop all the same
        finally:
            _ignore_signals()
            _stop_all(self.children, self.broker)
        return code

    def _start_all(self) -> None:
        if self.key_note:
            _say(self.key_note)
        self._start_kafka()
        self._start_simulator()
        self._start_worker()
        self._start_sink_and_ingress()
        use_case_id = self._create_demo()
        worker_metrics = (
            f"http://{self.settings.http_host}:{self.metrics_port}/metrics"
            if self.metrics_port
            else "disabled (SMSLANE_WORKER_METRICS_PORT=0)"
        )
        _print_welcome(
            self.base_url, self.api_key, self.admin_key, use_case_id, self.log_dir,
            worker_metrics, inbound_url=self.inbound_url,
        )  # fmt: skip

    def _child(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.env, self.log_dir, die_with_parent=True)
        self.children.append(child)
        child.start()
        return child

    def _start_kafka(self) -> None:
        if self.settings.kafka_security_protocol != "PLAINTEXT":
            self._use_secured_cluster()
            return
        _say(f"[1/5] Kafka at {self.settings.kafka_bootstrap_servers}")
        local = LocalKafka(self.settings, progress=lambda line: _say(f"      {line}"))
        if local.recorded_pid() is None:
            self.broker = local  # if it starts one, it is ours to stop
        if local.start(die_with_parent=True).pid is None:
            self.broker = None  # someone else's broker answers

    def _use_secured_cluster(self) -> None:
        """A secured cluster is the user's own: ``up`` never starts a local broker for it,
        it checks the settings fit (a wrong one stops here, named) and that it answers."""
        where = self.settings.kafka_bootstrap_servers
        protocol = self.settings.kafka_security_protocol
        try:
            answers = asyncio.run(check_connection(self.settings))
        except WrongConnectionSetting as exc:
            raise KafkaError(str(exc)) from None
        if not answers:
            raise KafkaError(
                f"nothing answers at SMSLANE_KAFKA_BOOTSTRAP_SERVERS={where}, and with "
                f"SMSLANE_KAFKA_SECURITY_PROTOCOL={protocol} smslane up starts no local broker "
                "(it runs one only for PLAINTEXT): start your cluster, or unset the "
                "SMSLANE_KAFKA_SECURITY_* settings to use a local one"
            )
        _say(f"[1/5] Kafka at {where} ({protocol}): the configured cluster answers")

    def _start_simulator(self) -> None:
        if not self.use_simulator:
            _say("[2/5] Twilio at " + self.env["SMSLANE_TWILIO_API_BASE_URL"])
            return
        sim_port = _pick_port("127.0.0.1", self.settings.http_port + 1000)
        sim_url = f"http://127.0.0.1:{sim_port}"
        self.env["SMSLANE_TWILIO_API_BASE_URL"] = sim_url
        self.env["SMSLANE_TWILIO_LOOKUP_BASE_URL"] = sim_url
        sim = self._child("twilio-sim", [
            "twilio-sim", "--port", str(sim_port),
            "--account", f"{SIM_ACCOUNT_SID}:{SIM_AUTH_TOKEN}",
            "--service", f"{SIM_SERVICE_SID}:{','.join(SIM_SENDERS)}",
            "--inbound-url", self.inbound_url,
            *(("--callback-delay-ms", str(DEMO_CALLBACK_DELAY_MS),
                "--time-scale", str(DEMO_TIME_SCALE)) if self.demo else ()),
        ])  # fmt: skip
        _say(f"[2/5] Twilio simulator at {sim_url}, pid {sim.pid} (no real Twilio configured)")
        wait_until(lambda: sim.check_alive() or _http_ok(f"{sim_url}/_sim/health"), 60, "sim")

    def _start_worker(self) -> None:
        ready_file = self.var / "worker.ready"
        ready_file.unlink(missing_ok=True)
        worker = self._child("worker", ["worker"])
        _say(f"[3/5] worker, pid {worker.pid} (log: {worker.log_path})")
        wait_until(lambda: worker.check_alive() or ready_file.exists(), 120, "the worker")

    def _start_sink_and_ingress(self) -> None:
        sink = self._child("sink", ["sink"])
        _say(f"[4/5] sink into {self.env['SMSLANE_DATABASE_URL']}, pid {sink.pid} "
             f"(log: {sink.log_path})")  # fmt: skip
        ingress = self._child("ingress", ["ingress"])
        _say(f"[5/5] ingress at {self.base_url}, pid {ingress.pid} (log: {ingress.log_path})")
        wait_until(
            lambda: (
                ingress.check_alive() or sink.check_alive()
                or _http_ok(f"{self.base_url}/readyz")
            ),
            60,
            "the ingress",
        )  # fmt: skip

    def _create_demo(self) -> str:
        """With --demo and the simulator, a ready use case; its id (or a placeholder)."""
        if self.demo and self.use_simulator:
            from smslane.demo import create_demo

            return create_demo(self.base_url, self.admin_key, SIM_ACCOUNT_SID, SIM_AUTH_TOKEN,
                               SIM_SERVICE_SID, SIM_SENDERS)  # fmt: skip
        if self.demo:
            _say(
                "(--demo creates its use case with the Twilio simulator only: "
                "SMSLANE_TWILIO_API_BASE_URL is set, so create one with the admin API)"
            )
        return "<use_case_id>"

    def _report(self, exc: Exception) -> None:
        _say_quietly(f"\nsmslane up: {exc}")
        for child in self.children:
            if not child.alive() or isinstance(exc, TimeoutError):
                _say_quietly(f"--- last lines of {child.log_path} ---\n{child.tail(15)}")


def run_up(settings: Settings, *, demo: bool) -> int:
    """Start everything, print how to use it, wait for Ctrl-C, SIGTERM, SIGHUP or a closed
    standard output, stop everything; the exit status."""
    return _Up(settings, demo=demo).run()


def _watch(children: list[Child], base_url: str, api_key: str, *, demo: bool) -> None:
    """Until a signal or a child's death: check the children, refresh the demo's view."""
    from smslane.live import POLL_INTERVAL_S, LiveView, MessageFeed

    view = LiveView(MessageFeed(base_url, api_key)) if demo else None
    with view or contextlib.nullcontext():
        while True:
            for child in children:
                child.check_alive()
            if _stdout_closed():
                _detach_stdout()
                raise _OutputClosed()
            if view is not None:
                try:
                    view.refresh()
                except OSError as exc:  # the view writes to stdout itself
                    if not _output_gone(exc):
                        raise
                    _detach_stdout()
                    raise _OutputClosed() from exc
            time.sleep(POLL_INTERVAL_S)


def _stop_all(children: list[Child], broker: LocalKafka | None) -> None:
    for child in reversed(children):
        _say_quietly(f"  stopping {child.name} (pid {child.pid})")
        child.stop()
    if broker is not None:
        broker.progress = lambda line: _say_quietly(f"      {line}")
        with contextlib.suppress(KafkaError, OSError):
            broker.stop()
    _say_quietly("Stopped.")


def _print_welcome(
    base_url: str,
    api_key: str,
    admin_key: str,
    use_case_id: str,
    log_dir: Path,
    worker_metrics: str,
    *,
    inbound_url: str | None = None,
) -> None:
    payload = (
        f'{{"use_case_id": "{use_case_id}", "to_phone_number": "{DEMO_TO}", '
        '"message": "Hello from smslane"}'
    )
    auth = shlex.quote(f"Authorization: Bearer {api_key}")
    _say(
        f"""
smslane is up.
  API:            {base_url}
  OpenAPI docs:   {base_url}/docs
  API key:        {api_key}
  Admin API key:  {admin_key}
  Use case id:    {use_case_id}
  Metrics:        {base_url}/metrics (ingress), {worker_metrics} (worker)
  Inbound URL:    {inbound_url or base_url + INBOUND_WEBHOOK_PATH}
                  (Twilio's "A message comes in" webhook, HTTP POST, on each Messaging Service)
  Logs:           {log_dir}

Send a first message:
  curl -s -X POST {base_url}/v1/sms/ \\
    -H {auth} -H 'Content-Type: application/json' \\
    -d {shlex.quote(payload)}

Then follow it: curl -s {base_url}/v1/sms/<id> -H {auth}
Press Ctrl-C to stop everything."""
    )
