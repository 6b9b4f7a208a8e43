"""The benchmark loads the floor (loadtests/floor.py) beside the real server and reports both."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
import redis

from tests.conftest import PG_ADMIN_URL, REPO_ROOT, TEST_REDIS_URL, _service_missing


def test_bench_runs_the_floor_alternating_with_the_real_server_and_reports_both() -> None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    # The bench empties its Redis database: never the one the tests use.
    bench_redis = os.environ.get("BENCH_REDIS_URL") or TEST_REDIS_URL.rsplit("/", 1)[0] + "/12"
    try:
        redis.Redis.from_url(bench_redis, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        _service_missing(f"Redis at {bench_redis}", exc)
    names = f"bench_floor_test_{os.getpid()}"
    env = {**os.environ, "BENCH_REDIS_URL": bench_redis, "BENCH_DB": names, "BENCH_PGBENCH_DB": f"{names}_pgbench",
           "BENCH_FLOOR_DB": f"{names}_floor", "BENCH_PG_ADMIN_URL": PG_ADMIN_URL}

    run = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--duration", "2", "--users", "2", "--workers", "1",
         "--rounds", "1", "--skip-pgbench"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert [phase["server"] for phase in result["phases"]] == ["real", "floor"]
    assert result["floor_orders_per_s"] > 0 and result["orders_per_s"] > 0
    # The ratio is taken before the two rates are rounded to one decimal for the JSON: equal within rounding.
    assert result["ratio_to_floor"] == pytest.approx(result["orders_per_s"] / result["floor_orders_per_s"], abs=0.002)
    assert result["server_cpu_ms_per_order"] > 0 and result["floor_server_cpu_ms_per_order"] > 0
    assert result["floor_errors"] == 0 and result["floor_oversold"] == 0
    assert result["floor_orders_written"] == result["floor_orders"] > 0  # it really writes what it answers
    assert result["errors"] == 0 and result["oversold"] == 0 and result["audit_ok"] is True
    with psycopg.connect(PG_ADMIN_URL) as conn:  # the bench drops every database it made
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", (f"{names}%",)).fetchone()
    assert left == (0,)
