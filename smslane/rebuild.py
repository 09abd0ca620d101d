"""The terminal side of ``smslane store rebuild``: progress, summary, exit status.

The work itself is ``sinks.rebuild.rebuild_store``. Progress goes to standard error: a bar
on a terminal, otherwise a log line every few seconds; the summary goes to standard output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from schemas.settings import Settings
from sinks.rebuild import RebuildProgress, RebuildRefused, RebuildSummary, rebuild_store, shown_url
from store import StoreUnavailable

log = logging.getLogger(__name__)

#: Seconds between two progress lines when standard error is not a terminal.
PROGRESS_INTERVAL_S = 5.0


class _ProgressLines:
    """A log line at most every ``interval_s`` seconds (and the first one at once)."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._last = -interval_s

    def __call__(self, progress: RebuildProgress) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s and progress.read < progress.total:
            return
        self._last = now
        share = 100.0 * progress.read / progress.total if progress.total else 100.0
        log.info(
            "rebuild: %d/%d offsets read (%.0f%%), %d events, %d rows written",
            progress.read, progress.total, share, progress.events, progress.rows,
            extra={"read": progress.read, "total": progress.total, "rows": progress.rows},
        )  # fmt: skip


class _ProgressBar:
    """A rich progress bar on standard error."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._task = bar.add_task("sms.status → store", total=None)

    def __call__(self, progress: RebuildProgress) -> None:
        self._bar.update(self._task, total=progress.total, completed=progress.read)


@contextlib.contextmanager
def _bar_on_stderr() -> Iterator[Progress]:
    """A running bar; log lines written meanwhile appear above it, not through it."""
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), redirect_stderr=True, transient=True,
        console=Console(stderr=True, soft_wrap=True),  # a log line stays one line
    )  # fmt: skip
    original = sys.stderr
    with bar:
        handlers = [
            h
            for h in logging.getLogger().handlers
            if isinstance(h, logging.StreamHandler) and h.stream is original
        ]
        for handler in handlers:
            handler.setStream(sys.stderr)  # rich's proxy while the bar runs
        try:
            yield bar
        finally:
            for handler in handlers:
                handler.setStream(original)


def summary_line(url: str, summary: RebuildSummary) -> str:
    """What a finished rebuild says on standard output."""
    return (
        f"rebuilt {shown_url(url)} from {summary.topic}: {summary.records} records "
        f"({summary.events} events read from {summary.partitions} partitions, "
        f"{summary.rows} rows written, {summary.skipped} values skipped) "
        f"in {summary.seconds:.1f}s"
    )


async def _rebuild(settings: Settings, url: str, force: bool, batch_size: int) -> RebuildSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if not sys.stderr.isatty():
        return await rebuild_store(
            settings, url, force=force, on_progress=_ProgressLines(), stop=stop,
            batch_size=batch_size,
        )  # fmt: skip
    with _bar_on_stderr() as bar:
        return await rebuild_store(
            settings, url, force=force, on_progress=_ProgressBar(bar), stop=stop,
            batch_size=batch_size,
        )  # fmt: skip


def run_rebuild(settings: Settings, *, database_url: str, force: bool, batch_size: int) -> int:
    """``smslane store rebuild``: 0 when complete, 1 when refused, 130 when interrupted."""
    try:
        summary = asyncio.run(_rebuild(settings, database_url, force, batch_size))
    except RebuildRefused as exc:
        sys.stderr.write(f"smslane store rebuild: {exc}\n")
        return 1
    except StoreUnavailable:
        sys.stderr.write(
            f"smslane store rebuild: the database at {shown_url(database_url)} does not "
            "answer or refuses writes\n"
        )
        return 1
    if not summary.complete:
        sys.stdout.write(
            f"rebuild stopped before the end: {shown_url(database_url)} holds "
            f"{summary.records} records so far; run it again with --force to finish\n"
        )
        return 130
    sys.stdout.write(summary_line(database_url, summary) + "\n")
    return 0
