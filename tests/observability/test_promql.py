"""tests/observability/promql.py reads the metric names and labels of an expression."""

from __future__ import annotations

import pytest

from tests.observability.promql import reads


def test_functions_aggregations_ranges_and_strings_are_not_metrics() -> None:
    found = reads(
        'histogram_quantile(0.95, sum by (le, status) (rate(a_seconds_bucket{route="/v1/{x}",'
        ' method=~"P.*"}[$__rate_interval]))) / on (job) group_left (env) b_total offset 5m'
        " and up"
    )
    assert found.names == {"a_seconds_bucket", "b_total", "up"}
    assert found.labels == {"le", "status", "route", "method", "job", "env"}


def test_a_bare_selector_and_one_by_name() -> None:
    assert reads("smslane_worker_records").names == {"smslane_worker_records"}
    assert reads('{__name__="x", a!="1"}').labels == {"a"}


def test_what_prometheus_refuses_is_refused() -> None:
    with pytest.raises(ValueError):
        reads("sum by (le (rate(x[5m]))")
