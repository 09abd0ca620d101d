"""Maven's download lines become one bar on a terminal, a few lines otherwise (no network)."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

import pytest
from rich.console import Console

from schemas.settings import Settings
from smslane.kafka_local import LocalKafka
from smslane.maven_progress import (
    EXPECTED_DOWNLOADS,
    Download,
    DownloadBar,
    DownloadLines,
    parse_download,
)

CENTRAL = "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2"


def maven_lines(count: int) -> list[str]:
    """``count`` download lines as Maven 3 prints them, with other lines between."""
    lines = ["[INFO] Scanning for projects..."]
    for n in range(count):
        lines.append(f"[INFO] Downloading from central: https://repo/x/f{n}.jar")
        lines.append(f"{CENTRAL}/org/example/f{n}/1.0/f{n}-1.0.jar (2.0 kB at 40 kB/s)")
    return [*lines, "[INFO] BUILD SUCCESS"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f"{CENTRAL}/org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.pom (24 kB at 2.7 MB/s)",
            Download("kafka_2.13-4.1.1.pom", 24_000),
        ),
        (
            f"{CENTRAL}/org/scala-lang/scala-library/2.13.16/scala-library-2.13.16.jar "
            "(5.9 MB at 12 MB/s)",
            Download("scala-library-2.13.16.jar", 5_900_000),
        ),
        (f"{CENTRAL}/a/b/1/b-1.sha1 (40 B at 2 kB/s)", Download("b-1.sha1", 40)),
        ("[INFO] Downloading from central: https://repo/x/f.jar", None),
        ("[INFO] Copying re2j-1.8.jar to /tmp/libs/re2j-1.8.jar", None),
    ],
)
def test_a_download_line_names_the_file_and_its_size(line: str, expected: Download) -> None:
    assert parse_download(line) == expected


def feed(report: DownloadLines | DownloadBar, lines: list[str]) -> None:
    for line in lines:
        download = parse_download(line)
        if download is not None:
            report.downloaded(download)
    report.finish()


def test_without_a_terminal_a_cold_download_is_five_lines() -> None:
    written: list[str] = []
    feed(DownloadLines(written.append, expected=400), maven_lines(423))
    assert [line.split(":")[0].strip() for line in written] == [
        "Maven downloads what its cache lacks (about 400 files when empty)...",
        "25 %", "50 %", "75 %", "Maven downloaded 423 files, 0.8 MB",
    ]  # fmt: skip
    assert "last f99-1.0.jar" in written[1]  # the 100th file is the first quarter


def test_a_warm_cache_says_only_start_and_end() -> None:
    written: list[str] = []
    feed(DownloadLines(written.append), maven_lines(EXPECTED_DOWNLOADS // 4 - 1))
    assert len(written) == 2 and written[-1].startswith("  Maven downloaded ")


def test_on_a_terminal_one_bar_and_a_last_line() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    feed(DownloadBar(console, expected=400), maven_lines(140))
    output = screen.getvalue()
    assert output.count("downloaded ") == 1
    assert output.rstrip().endswith("Maven downloaded 140 files, 0.3 MB")
    assert "Kafka jars" in output and "100%" in output  # the bar was drawn, and ended full


FAKE_MVN = """#!{python}
import sys, zipfile
from pathlib import Path
out = Path(next(a for a in sys.argv if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
out.mkdir(parents=True, exist_ok=True)
for name in ("kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar"):
    with zipfile.ZipFile(out / name, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\\n")
for line in {lines!r}:
    print(line, flush=True)
"""


def test_first_resolve_turns_maven_output_into_a_few_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LocalKafka.resolve with a stand-in ``mvn`` that prints a cold run's download lines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN.format(python=sys.executable, lines=maven_lines(423)))
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    shown: list[str] = []
    broker = LocalKafka(
        Settings(kafka_home=tmp_path / "home", data_dir=tmp_path / "var"), progress=shown.append
    )
    broker.resolve()
    assert broker.artifacts_ok()
    assert shown[0].startswith("Resolving Apache Kafka")
    assert shown[-1].startswith("Kafka jars ready: 2 files")
    assert len(shown) == 7, shown  # resolving, start, 3 quarters, downloaded, ready
    assert "Maven downloaded 423 files" in shown[-2]
