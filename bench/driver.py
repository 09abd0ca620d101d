"""The harness's side of the load generator process, CPU windows and optional profiling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.procstat import CpuWindow, load_average

During = Callable[[], Coroutine[Any, Any, Any]]


class LoadGen:
    """``python -m bench.loadgen`` as a child process, driven one command at a time."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> LoadGen:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=64 * 2**20,
        )  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"op": "quit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 10)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator exited ({await self.proc.wait()})")
        return dict(json.loads(line))

    async def run(
        self,
        command: dict[str, Any],
        pids: dict[str, int],
        *,
        during: During | None = None,
        profile: dict[str, int] | None = None,
        profile_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Run one timed window; the generator's result plus CPU per process and the load.

        ``during`` runs alongside the window (e.g. a consumer-lag sampler) and its result
        is returned under ``"during"``. ``profile`` names processes to sample with py-spy.
        """
        assert self.proc is not None and self.proc.stdin is not None
        load = load_average()
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        started = await self._line()
        assert started["event"] == "started", started
        window = CpuWindow({**pids, "loadgen": self.pid}).start()
        side = asyncio.create_task(during()) if during else None
        async with Profiles(profile or {}, profile_dir or Path("profiles")) as profiles:
            done = await self._line()
        cpu = window.stop()
        result: dict[str, Any] = {"load_average_at_start": load, **done, "cpu": cpu}
        result.pop("event", None)
        if side is not None:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                result["during"] = await side
        if profiles.results:
            result["profiles"] = profiles.results
        return result


class Profiles:
    """``py-spy record`` on each named process while the block runs; top frames after."""

    def __init__(self, targets: dict[str, int], out_dir: Path, rate_hz: int = 100) -> None:
        self.targets, self.out_dir, self.rate_hz = targets, out_dir, rate_hz
        self._procs: dict[str, tuple[asyncio.subprocess.Process, Path]] = {}
        self.results: dict[str, Any] = {}

    async def __aenter__(self) -> Profiles:
        if not self.targets:
            return self
        if shutil.which("py-spy") is None:
            self.results = {n: {"error": "py-spy is not installed"} for n in self.targets}
            return self
        await asyncio.to_thread(self.out_dir.mkdir, parents=True, exist_ok=True)
        for name, pid in self.targets.items():
            out = self.out_dir / f"{name}-{pid}-{time.strftime('%H%M%S')}.txt"
            proc = await asyncio.create_subprocess_exec(
                "py-spy", "record", "-p", str(pid), "-r", str(self.rate_hz), "-f", "raw",
                "-o", str(out), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self._procs[name] = (proc, out)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for name, (proc, out) in self._procs.items():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            _, err = await proc.communicate()
            if not out.exists():
                self.results[name] = {"error": err.decode(errors="replace")[-500:]}
                continue
            text = await asyncio.to_thread(out.read_text)
            self.results[name] = {"file": str(out), **summarize_collapsed(text)}


_LINE = re.compile(r":\d+\)$")
_NOT_CODE = ("process ", "thread ")


def summarize_collapsed(text: str, top: int = 15) -> dict[str, Any]:
    """Top functions by self samples and by inclusive samples from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_LINE.sub(")", f) for f in stack.split(";") if f and not f.startswith(_NOT_CODE)]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[f, round(100 * n / max(total, 1), 1)] for f, n in counter.most_common(top)]

    return {"samples": total, "self_pct": share(own), "inclusive_pct": share(inclusive)}
