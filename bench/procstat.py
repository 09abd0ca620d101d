"""CPU and memory of processes from ``/proc``, and facts about this machine.

psutil is not a dependency of smslane, so this reads ``/proc/<pid>/stat`` (utime + stime,
fields 14 and 15, in clock ticks) and ``/proc/<pid>/status`` (VmRSS) directly.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (its threads included), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from ``/proc/stat``."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


@dataclass
class CpuWindow:
    """CPU used by named processes between :meth:`start` and :meth:`stop`."""

    pids: dict[str, int]
    started_at: float = 0.0
    before: dict[str, float | None] | None = None
    machine_before: tuple[float, float] = (0.0, 0.0)

    def start(self) -> CpuWindow:
        self.started_at = time.monotonic()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.machine_before = machine_cpu_seconds()
        return self

    def stop(self) -> dict[str, object]:
        """Per process: CPU seconds and cores used (CPU s / wall s), RSS; plus the machine's."""
        wall = max(time.monotonic() - self.started_at, 1e-9)
        assert self.before is not None
        processes: dict[str, dict[str, float | int | None]] = {}
        for name, pid in self.pids.items():
            after, before = cpu_seconds(pid), self.before.get(name)
            used = None if after is None or before is None else after - before
            processes[name] = {
                "cpu_s": None if used is None else round(used, 2),
                "cores": None if used is None else round(used / wall, 3),
                "rss_mb": _mb(rss_bytes(pid)),
            }
        busy, total = machine_cpu_seconds()
        busy_delta = busy - self.machine_before[0]
        total_delta = max(total - self.machine_before[1], 1e-9)
        ncpu = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 2),
            "processes": processes,
            "machine_busy_cores": round(busy_delta / total_delta * ncpu, 3),
        }


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def dir_size(path: Path) -> int:
    """Bytes on disk of every file under ``path`` (0 when it does not exist).

    Allocated blocks, not apparent sizes: Kafka preallocates 10 MB sparse index files per
    segment, which would otherwise dwarf a small topic.
    """
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_blocks * 512
    return total


def machine_info() -> dict[str, object]:
    """nproc, memory, CPU model, kernel, and the load at the time of the call."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "cpu_model": model,
        "kernel": platform.release(),
        "load_average": load_average(),
    }
