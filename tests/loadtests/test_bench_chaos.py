"""`bench --chaos` holds its invariants while an API worker, the Celery worker and Redis are killed
under load (loadtests/chaos.py). A smoke: it asserts the invariants only, never the timings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, REPO_ROOT, _service_missing


@pytest.mark.celery_worker
def test_chaos_bench_keeps_every_201_order_exactly_once_with_stock_ledger_and_mail_intact() -> None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    if shutil.which("redis-server") is None:  # the bench runs (and restarts) a Redis of its own
        _service_missing("redis-server on PATH", FileNotFoundError("redis-server"))
    name = f"bench_chaos_test_{os.getpid()}"
    env = {**os.environ, "BENCH_DB": name, "BENCH_PG_ADMIN_URL": PG_ADMIN_URL}

    run = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--chaos", "--duration", "12", "--users", "4", "--workers", "2",
         "--chaos-recovery-timeout", "90", "--chaos-drain-timeout", "20"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )

    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["invariants_ok"] is True and result["violations"] == []
    assert [fault["fault"] for fault in result["faults"]] == ["api_worker_sigkill", "celery_worker_sigkill",
                                                              "redis_restart"]
    assert all(fault["recovered"] for fault in result["faults"])
    # Every order a client saw 201 for is in the database once, under its own key; nothing else.
    assert result["orders_seen_201"] > 0
    assert result["seen_201_missing"] == result["seen_201_key_mismatch"] == result["seen_201_conflicting"] == 0
    assert result["duplicate_keys"] == result["orders_without_key"] == result["keys_without_order"] == 0
    assert result["orders"] == result["orders_seen_201"] + result["orders_unseen"]
    assert result["oversold"] == 0 and result["audit_ok"] is True
    # The worker's tasks are done: every order's confirmation mail was sent and arrived.
    assert result["mail_outbox"] >= result["orders"]
    assert result["mail_unsent"] == result["mail_not_delivered"] == 0
    with psycopg.connect(PG_ADMIN_URL) as conn:  # the bench drops the database it made
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert left == (0,)
