"""``python -m bench smoke`` runs every scenario end to end and writes a complete results file.

Not a performance test: tiny rates for a few seconds each, on the session's broker, with the
results written under ``tmp_path`` (never into the repo).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import EXPECTED_KEYS, SCENARIOS

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_smoke_writes_a_complete_results_file(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    summary = REPO / "BENCH.md"
    before = summary.stat().st_mtime_ns if summary.exists() else None
    done = subprocess.run(
        [
            sys.executable, "-m", "bench", "smoke", "--bootstrap", kafka_bootstrap,
            "--out", str(out), "--workdir", str(tmp_path / "work"),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=140,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "smoke: ok" in done.stdout
    files = list(out.glob("*-smoke.json"))
    assert len(files) == 1, files
    results = json.loads(files[0].read_text())
    assert results["mode"] == "smoke"
    assert set(results["scenarios"]) == set(SCENARIOS)
    for section, keys in EXPECTED_KEYS.items():
        holder = results[section] if section else results
        assert set(keys) <= set(holder), (section, set(keys) - set(holder))
    for step in results["send"]["steps"]:
        assert step["ok"] > 0 and {"p50_ms", "p99_ms", "p999_ms"} <= set(step["latency"])
        assert {"worker", "ingress", "loadgen"} <= set(step["cpu"]["processes"])
    callbacks = results["callbacks"]["steps"][0]
    assert callbacks["visibility"]["count"] > 0
    assert results["baseline"]["kafka"]["events"] == 3 * results["plan"]["raw_messages"]
    checkpoint = results["state"]["checkpoints"][0]
    assert checkpoint["rss_mb"] and checkpoint["warm_restart"]["ready_s"] > 0
    assert (summary.stat().st_mtime_ns if summary.exists() else None) == before
