"""A single-node Apache Kafka broker on this machine, in KRaft mode, without Docker.

The Kafka jars are resolved from Maven Central with ``mvn`` into a cache outside the repo
(``SMSLANE_KAFKA_HOME``, by default ``~/.cache/smslane/kafka/<version>``) and reused; the
broker's data, pid file and log live under ``SMSLANE_DATA_DIR/kafka``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.settings import Settings
from smslane.maven_progress import DownloadBar, DownloadLines, DownloadReport, parse_download
from smslane.processes import parent_death_signal

SLF4J_VERSION = "2.0.17"
LOG4J_VERSION = "2.25.2"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.smslane</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: WARN
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""


class KafkaError(Exception):
    """A problem with the local broker, explained in one line for a person."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    answering: bool
    detail: str


Progress = Callable[[str], None]


def _print(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaError(
            f"`{name}` was not found on PATH: install {package} "
            "(or point SMSLANE_KAFKA_BOOTSTRAP_SERVERS at a running broker)."
        )
    return path


async def broker_answers(settings: Settings, timeout_s: float = 3.0) -> bool:
    """True when a Kafka broker answers a metadata request at the settings' bootstrap
    servers, with their security settings."""
    from feeds import kafka_clients

    # aiokafka logs every refused connection at ERROR; a probe expects some.
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)
    client = kafka_clients.client(settings, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        await client.close()
        aiokafka_log.setLevel(level)


class LocalKafka:
    """Resolve, format, start, stop and inspect the local broker.

    ``progress`` takes each line to show. ``bar``: Maven's downloads as one progress bar on
    standard error instead of lines through ``progress``; by default when ``progress`` is
    the default (standard error) and standard error is a terminal.
    """

    def __init__(
        self, settings: Settings, progress: Progress = _print, *, bar: bool | None = None
    ) -> None:
        self.settings = settings
        self.progress = progress
        self.bar = progress is _print and sys.stderr.isatty() if bar is None else bar
        self.home = settings.kafka_home / settings.kafka_version
        self.libs = self.home / "libs"
        self.state = settings.data_dir.resolve() / "kafka"
        self.data = self.state / "data"
        self.pid_file = self.state / "broker.pid"
        self.log_file = self.state / "broker.log"
        host, _, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
        self.host, self.port = host, int(port)

    # -- artifacts -------------------------------------------------------------------------

    @property
    def _manifest(self) -> Path:
        return self.home / "manifest.json"

    def artifacts_ok(self) -> bool:
        """True when every jar of the manifest is present, whole, and unchanged."""
        try:
            manifest: dict[str, str] = json.loads(self._manifest.read_text())
        except (OSError, ValueError):
            return False
        for name, digest in manifest.items():
            jar = self.libs / name
            try:
                if hashlib.sha256(jar.read_bytes()).hexdigest() != digest:
                    return False
            except OSError:
                return False
        return bool(manifest)

    def resolve(self) -> None:
        """Fetch the Kafka jars with Maven unless a verified copy is cached."""
        if self.artifacts_ok():
            return
        mvn = _require_tool("mvn", "Apache Maven (Debian: apt-get install maven)")
        self.progress(
            f"Resolving Apache Kafka {self.settings.kafka_version} from Maven Central "
            f"into {self.home} (first run only)..."
        )
        shutil.rmtree(self.libs, ignore_errors=True)
        self._manifest.unlink(missing_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        pom = self.home / "pom.xml"
        pom.write_text(
            _POM.format(kafka=self.settings.kafka_version, slf4j=SLF4J_VERSION, log4j=LOG4J_VERSION)
        )
        for attempt in (1, 2):
            self._run_maven(mvn, pom)
            bad = self._broken_jars()
            if not bad:
                break
            # A corrupt jar in Maven's own cache would be copied again: drop it and refetch.
            self.progress(f"Broken jars in the Maven cache ({', '.join(bad)}); fetching again.")
            self._purge_from_maven_cache(bad)
            shutil.rmtree(self.libs, ignore_errors=True)
            if attempt == 2:
                raise KafkaError(f"Kafka jars are still broken after a second download: {bad}")
        manifest = {
            jar.name: hashlib.sha256(jar.read_bytes()).hexdigest()
            for jar in sorted(self.libs.glob("*.jar"))
        }
        self._manifest.write_text(json.dumps(manifest, indent=1))
        self.progress(f"Kafka jars ready: {len(manifest)} files in {self.libs}")

    def _run_maven(self, mvn: str, pom: Path) -> None:
        cmd = [
            mvn, "-B", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        report = self._download_report()
        tail = list[str]()
        try:
            for line in proc.stdout:
                tail = [*tail[-30:], line.rstrip()]
                download = parse_download(line)
                if download is not None:
                    report.downloaded(download)
        finally:
            report.finish()
        if proc.wait() != 0:
            raise KafkaError("mvn could not resolve Kafka:\n  " + "\n  ".join(tail[-15:]))

    def _download_report(self) -> DownloadReport:
        return DownloadBar() if self.bar else DownloadLines(self.progress)

    def _broken_jars(self) -> list[str]:
        bad = []
        for jar in self.libs.glob("*.jar"):
            try:
                with zipfile.ZipFile(jar) as archive:
                    archive.infolist()
            except (zipfile.BadZipFile, OSError):
                bad.append(jar.name)
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            bad.append("kafka_2.13 (missing)")
        return bad

    @staticmethod
    def _purge_from_maven_cache(names: list[str]) -> None:
        repo = Path.home() / ".m2" / "repository"
        for name in names:
            for path in repo.rglob(name):
                path.unlink(missing_ok=True)

    # -- broker ----------------------------------------------------------------------------

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        java = _require_tool("java", "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre)")
        return [
            java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state / 'log4j2.yaml'}",
            "-cp", f"{self.libs}/*", main, *args,
        ]  # fmt: skip

    def _write_config(self) -> Path:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "log4j2.yaml").write_text(_LOG4J2)
        controller = self.port + 1
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{controller}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "168",
        }
        path = self.state / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _format(self, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        tool = "kafka.tools.StorageTool"
        fmt = self._java_cmd(tool, "format", "-t", self._cluster_id(), "-c", str(config))
        done = subprocess.run(fmt, capture_output=True, text=True)
        if done.returncode != 0:
            raise KafkaError(f"formatting KRaft storage failed: {done.stdout}{done.stderr}")

    def _cluster_id(self) -> str:
        """A new cluster id for ``format`` (a node of a cluster takes the cluster's)."""
        return subprocess.run(
            self._java_cmd("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip

    def recorded_pid(self) -> int | None:
        """The pid of the broker we started, if that process still runs a Kafka broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def status(self) -> BrokerStatus:
        pid = self.recorded_pid()
        answering = asyncio.run(broker_answers(self.settings))
        where = self.settings.kafka_bootstrap_servers
        if pid and answering:
            detail = f"running (pid {pid}) and answering at {where}; log: {self.log_file}"
        elif pid:
            detail = f"process {pid} is up but does not answer at {where} yet; log: {self.log_file}"
        elif answering:
            detail = f"a broker not started by smslane answers at {where}"
        else:
            detail = f"not running; nothing answers at {where}"
        return BrokerStatus(pid is not None, pid, answering, detail)

    def start(self, timeout_s: float = 90.0, *, die_with_parent: bool = False) -> BrokerStatus:
        """Start the broker in the background and wait until it answers a metadata request.

        ``die_with_parent``: a broker this call starts gets SIGTERM when this process dies
        (``smslane up``); ``smslane kafka start`` leaves it running on purpose.
        """
        where = self.settings.kafka_bootstrap_servers
        pid = self.recorded_pid()
        if pid is not None:
            self.progress(f"Kafka is already running (pid {pid}) at {where}.")
            self._wait_ready(pid, timeout_s)
            return self.status()
        if asyncio.run(broker_answers(self.settings)):
            self.progress(f"A Kafka broker already answers at {where}; not starting another.")
            return self.status()
        self.resolve()
        started = time.monotonic()
        config = self._write_config()
        self._format(config)
        preexec = parent_death_signal() if die_with_parent else None
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(config)),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.state, preexec_fn=preexec,
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        self.progress(
            f"Starting Kafka {self.settings.kafka_version} (pid {proc.pid}) at {where}..."
        )
        self._wait_ready(proc.pid, timeout_s)
        self.progress(
            f"Kafka is ready at {where} after {time.monotonic() - started:.1f}s; "
            f"log: {self.log_file}"
        )
        return self.status()

    def _wait_ready(self, pid: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise KafkaError(
                    f"Kafka exited during start-up; last lines of {self.log_file}:\n"
                    + _tail(self.log_file)
                )
            if asyncio.run(broker_answers(self.settings, 2.0)):
                return
            time.sleep(0.3)
        raise KafkaError(f"Kafka did not answer within {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the broker we started (by its recorded pid); True when one was stopped."""
        pid = self.recorded_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self.progress("No Kafka broker started by smslane is running.")
            return False
        self.progress(f"Stopping Kafka (pid {pid})...")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            self.progress(f"Kafka did not stop within {timeout_s:.0f}s; killing it.")
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        self.progress("Kafka stopped.")
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        # A zombie (exited, not yet reaped by its parent) counts as gone.
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
