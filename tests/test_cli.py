"""The `marketplace` command as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.embedded_server import embedded_server


def run_cli(*args: str, env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "marketplace.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", env_extra={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("serve", "worker", "beat", "db", "keys"):
        assert command in result.stdout


def test_db_upgrade_then_keys_create_bootstraps_an_operator_key(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    upgraded = run_cli("db", "upgrade", env_extra=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    created = run_cli("keys", "create", "--role", "operator", env_extra=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "mk_" in created.stdout
    nobody = run_cli("keys", "create", "--role", "seller", "--subject-id", "0190d3f4-0000-7000-8000-000000000001",
                     env_extra=env, cwd=tmp_path)
    assert nobody.returncode == 2 and "there is no seller" in nobody.stdout


def test_worker_without_a_broker_explains_that_tasks_run_in_process(tmp_path: Path) -> None:
    result = run_cli("worker", env_extra={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "No broker configured" in result.stdout


def test_serve_on_the_embedded_default_migrates_prints_a_key_and_answers_healthz(tmp_path: Path) -> None:
    with embedded_server(tmp_path) as served:
        assert httpx.get(f"{served.base_url}/openapi.json").json()["openapi"].startswith("3.")
        assert (tmp_path / "kernel.db").exists()
        listing = httpx.get(f"{served.base_url}/v1/storefronts/makers-guild-demo/products")
        assert listing.status_code == 200 and listing.json()["items"]
    assert "Operator API key (shown once): mk_" in served.output()


def test_demo_runs_the_whole_story_and_ends_with_a_clean_audit(tmp_path: Path) -> None:
    result = run_cli("demo", env_extra={"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("Payout batch", "Who sold, earned and was paid what", "ledger audit clean"):
        assert step in result.stdout
