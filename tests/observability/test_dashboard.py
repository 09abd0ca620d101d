"""deploy/: the Grafana dashboard reads only metrics the real processes export, with their
labels, and the Prometheus example scrapes where those processes serve them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from schemas.settings import Settings
from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_lifecycle import wait_record
from tests.observability.conftest import worker_metrics_url
from tests.observability.promql import reads

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "smslane.json"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
#: Made by Prometheus itself for every target, not by a process.
PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"job", "instance"}
#: The series a family of each type adds to the exposition (OpenMetrics names).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "unknown": ("",),
}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]


class Exposition:
    """What one or more ``/metrics`` answers declare: series names, and labels per name."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.labels: dict[str, set[str]] = {}

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            # Declared even before its first labelled sample (# HELP and # TYPE lines).
            self.names.update(family.name + suffix for suffix in SUFFIXES[family.type])
            for sample in family.samples:
                self.names.add(sample.name)
                self.labels.setdefault(sample.name, set()).update(sample.labels)


async def exposition_after_traffic(stack: Stack) -> Exposition:
    """Both processes' metrics after a delivered message and a Twilio error (21211), so that
    the labelled series the dashboard reads exist."""
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        body = {"use_case_id": use_case["id"], "message": "Hello"}
        sent = await client.post("/v1/sms/", json={**body, "to_phone_number": unique_number()})
        assert sent.status_code == 201, sent.text
        await wait_record(client, sent.json()["id"], lambda r: r["status"] == "delivered")
        refused = await client.post("/v1/sms/", json={**body, "to_phone_number": "+15005550001"})
        assert refused.json()["code"] == "invalid_destination", refused.text
    exposition = Exposition()
    async with httpx.AsyncClient(timeout=10.0) as http:
        for url in (f"{stack.base_url}/metrics", worker_metrics_url(stack)):
            answer = await http.get(url)
            assert answer.status_code == 200, url
            exposition.add(answer.text)
    return exposition


@pytest.mark.integration
async def test_every_metric_and_label_of_the_dashboard_is_exported(observed: Stack) -> None:
    exposition = await exposition_after_traffic(observed)
    for expr in expressions():
        used = reads(expr)
        assert used.names, f"no metric in {expr!r}"
        missing = used.names - exposition.names - PROMETHEUS_OWN
        assert not missing, f"{expr!r} reads {missing}, which no smslane process exports"
        exported = used.names & set(exposition.labels)
        if not exported:
            continue  # declared, but no sample yet (reconciliation, repair, skipped events)
        known = set().union(*(exposition.labels[n] for n in exported)) | TARGET_LABELS
        assert used.labels <= known, f"{expr!r} names labels {used.labels - known} it lacks"


def readme_metrics() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Metrics") :]
    section = section[: section.index("\n## ", 1)]
    return set(re.findall(r"^\| `(smslane_[a-z_]+)`", section, re.MULTILINE))


def test_the_dashboard_shows_every_metric_the_readme_lists() -> None:
    listed = readme_metrics()
    assert len(listed) >= 10
    used = set().union(*(reads(e).names for e in expressions()))
    shown = {m for m in listed if any(name.startswith(m) for name in used)}
    assert shown == listed, f"not on the dashboard: {listed - shown}"


def test_the_dashboard_is_one_grafana_document() -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels(board):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        if panel["type"] != "row":
            assert panel.get("description"), f"{panel['title']} says what it shows"


def test_prometheus_scrapes_both_processes_where_they_serve_by_default() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    defaults = Settings()
    expected = {
        "smslane-ingress": f"127.0.0.1:{defaults.http_port}",
        "smslane-worker": f"127.0.0.1:{defaults.worker_metrics_port}",
    }
    for name, target in expected.items():
        assert jobs[name]["metrics_path"] == "/metrics"
        assert jobs[name]["static_configs"][0]["targets"] == [target]
    assert all(re.fullmatch(r"smslane-.*", name) for name in jobs)  # the dashboard's selector
