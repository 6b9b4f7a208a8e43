"""GET /metrics: Prometheus' exposition with the request and SQL-statement counters; behind a
bearer token when METRICS_TOKEN is set."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import Backend


def test_metrics_expose_request_counts_latencies_and_statements_per_request(client: TestClient) -> None:
    client.get("/healthz")

    text = client.get("/metrics").text

    for name in ("http_requests_total", "http_request_duration_seconds", "sql_statements_per_request"):
        assert name in text, name


def test_with_a_metrics_token_only_a_scraper_sending_it_reads_metrics(
    client: TestClient, env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(env.runtime.settings, "metrics_token", SecretStr("scrape-secret-123"))

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert allowed.status_code == 200 and "http_requests_total" in allowed.text
