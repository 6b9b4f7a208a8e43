"""Prometheus metrics: request counts and latencies, and SQL statements executed.

`sql_statements_total` is what the benchmark divides by orders to report statements per
order, so it counts every statement the server sends to the database.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from sqlalchemy import Engine, event

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SQL_STATEMENTS = Counter("sql_statements_total", "SQL statements sent to the database", registry=REGISTRY)
ORDERS_PLACED = Counter("orders_placed_total", "Orders placed", registry=REGISTRY)
REQUEST_STATEMENTS = Histogram(
    "sql_statements_per_request", "SQL statements one request sent", ["method", "route"], registry=REGISTRY,
    buckets=(1, 2, 4, 6, 8, 10, 12, 16, 24, 32, 64, 128),
)

# The statements of the request being handled (a one-item list, so the copy of the context
# that FastAPI's thread pool runs sync handlers in still counts into the same request).
current_request_statements: ContextVar[list[int] | None] = ContextVar("current_request_statements", default=None)


def count_statements(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        SQL_STATEMENTS.inc()
        counter = current_request_statements.get()
        if counter is not None:
            counter[0] += 1


def exposition_registry() -> CollectorRegistry:
    """With several server processes (PROMETHEUS_MULTIPROC_DIR set), sum every process's values;
    otherwise this process's registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY
