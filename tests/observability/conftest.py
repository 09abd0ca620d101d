"""One running stack for the observability tests, with the worker's metrics on a known port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Stack, free_port


@pytest.fixture(scope="package")
def observed(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("observed"),
        kafka_bootstrap,
        worker_metrics_port=str(free_port()),
    )
    with running.running():
        yield running


def worker_metrics_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['SMSLANE_WORKER_METRICS_PORT']}/metrics"
