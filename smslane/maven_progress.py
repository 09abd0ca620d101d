"""How the first ``smslane kafka start`` reports Maven's download of the Kafka jars.

Maven prints one ``Downloaded from central: URL (SIZE at RATE)`` line per file, several
hundred on an empty Maven cache: the Kafka jars, their POMs and Maven's own dependency
plugin. They become one progress bar on a terminal (:class:`DownloadBar`) and a handful of
lines otherwise (:class:`DownloadLines`: the start, each quarter, the end). Maven cannot
say beforehand how many files it will fetch, so the share is counted against
:data:`EXPECTED_DOWNLOADS`, the count on an empty cache; a cache that already holds some of
them makes the bar end early, at 100 %, when Maven finishes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

#: Files Maven downloads for Kafka 4.1.1 with an empty ``~/.m2`` (measured: 423, 52 MB).
EXPECTED_DOWNLOADS = 420

_DOWNLOADED = re.compile(
    r"Downloaded from \S+: \S+/(?P<name>[^/\s]+) \((?P<size>[0-9.]+) (?P<unit>[kMG]?B)"
)
_UNITS = {"B": 1, "kB": 1_000, "MB": 1_000_000, "GB": 1_000_000_000}


@dataclass(frozen=True)
class Download:
    """One file Maven fetched: its name and its size in bytes."""

    name: str
    size: int


def parse_download(line: str) -> Download | None:
    """The file a ``Downloaded from`` line of Maven names; None for any other line."""
    match = _DOWNLOADED.search(line)
    if match is None:
        return None
    size = float(match.group("size")) * _UNITS[match.group("unit")]
    return Download(match.group("name"), int(size))


@dataclass
class Tally:
    """Files and bytes downloaded so far."""

    files: int = 0
    size: int = 0

    def add(self, download: Download) -> None:
        self.files += 1
        self.size += download.size

    def summary(self) -> str:
        return f"{self.files} files, {self.size / 1_000_000:.1f} MB"


class DownloadReport(Protocol):
    """Told of each downloaded file, then that Maven has finished."""

    def downloaded(self, download: Download) -> None: ...

    def finish(self) -> None: ...


class DownloadLines:
    """Without a terminal: a line at the start, at each quarter of the expected files, and
    one at the end, through ``write`` (a log file stays readable)."""

    def __init__(self, write: Callable[[str], None], expected: int = EXPECTED_DOWNLOADS) -> None:
        self._write = write
        self._expected = expected
        self._tally = Tally()
        self._quarters = 0
        write(f"  Maven downloads what its cache lacks (about {expected} files when empty)...")

    def downloaded(self, download: Download) -> None:
        self._tally.add(download)
        reached = min(3, 4 * self._tally.files // self._expected)
        if reached > self._quarters:
            self._quarters = reached
            self._write(f"  {25 * reached} %: {self._tally.summary()}, last {download.name}")

    def finish(self) -> None:
        self._write(f"  Maven downloaded {self._tally.summary()}")


class DownloadBar:
    """On a terminal: one bar on standard error, files against the expected count."""

    def __init__(self, console: Console | None = None, expected: int = EXPECTED_DOWNLOADS) -> None:
        self._expected = expected
        self._tally = Tally()
        self._bar = Progress(
            TextColumn("Kafka jars"), BarColumn(bar_width=24), TaskProgressColumn(),
            TextColumn("{task.fields[tally]}"), TimeElapsedColumn(),  # fits 80 columns
            console=console or Console(stderr=True), transient=True,
        )  # fmt: skip
        self._task = self._bar.add_task("maven", total=expected, tally="")
        self._bar.start()

    def downloaded(self, download: Download) -> None:
        self._tally.add(download)
        # Past the expected count the bar waits just short of its end for Maven to finish.
        self._bar.update(
            self._task,
            total=max(self._expected, self._tally.files + 1),
            completed=self._tally.files,
            tally=f"{self._tally.files:4d} files {self._tally.size / 1_000_000:5.1f} MB",
        )

    def finish(self) -> None:
        self._bar.update(self._task, total=self._tally.files, completed=self._tally.files)
        self._bar.stop()
        self._bar.console.print(f"  Maven downloaded {self._tally.summary()}", highlight=False)
