"""What a PromQL expression reads: its metric names and the labels it names.

Parsed by ``promql-parser`` (the Rust parser of GreptimeDB, a dev dependency), so an
expression Prometheus would refuse fails here too. Grafana's ``$__rate_interval`` and
``$__interval`` are replaced by a duration first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import promql_parser

_GRAFANA_INTERVAL = re.compile(r"\$__(?:rate_)?interval|\$__range")
_CHILDREN = ("lhs", "rhs", "expr", "param", "vector_selector")


@dataclass
class Reads:
    """The metric names of an expression and every label its selectors or clauses name."""

    names: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    children = [getattr(node, name, None) for name in _CHILDREN]
    if isinstance(node, promql_parser.Call):
        children += list(node.args)
    for child in children:
        if child is not None and not isinstance(child, (int, float, str)):
            yield from _nodes(child)


def reads(expr: str) -> Reads:
    """Parse ``expr`` (ValueError when PromQL refuses it) and say what it reads."""
    tree = promql_parser.parse(_GRAFANA_INTERVAL.sub("5m", expr))
    found = Reads()
    for node in _nodes(tree):
        if isinstance(node, promql_parser.VectorSelector):
            found.names.add(node.name or "")
            found.labels.update(m.name for m in node.matchers.matchers if m.name != "__name__")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            found.labels.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            found.labels.update(matching.labels if matching is not None else ())
            found.labels.update(node.modifier.group_labels or ())
    found.names.discard("")
    return found
