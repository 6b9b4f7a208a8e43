"""The `marketplace` command as a newcomer runs it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

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
        assert httpx.get(f"{served.base_url}/openapi.json", timeout=60).json()["openapi"].startswith("3.")
        assert (tmp_path / "marketplace.db").exists()
        listing = httpx.get(f"{served.base_url}/v1/storefronts/makers-guild-demo/products", timeout=60)
        assert listing.status_code == 200 and listing.json()["items"]
    assert "Operator API key (shown once): mk_" in served.output()


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _amounts(sentence: str) -> list[int]:
    return [int(a.replace(",", "").replace(".", "")) for a in re.findall(r"\d[\d,]*\.\d\d", sentence)]


def test_demo_runs_the_whole_story_and_ends_with_a_clean_audit(tmp_path: Path) -> None:
    result = run_cli("demo", env_extra={"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("Payout batch", "Who sold, earned and was paid what", "ledger audit clean"):
        assert step in result.stdout


def test_demo_output_is_fit_to_show_a_customer_and_a_second_run_reuses_its_cast(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    env = {"DATABASE_URL": f"sqlite:///{database}", "COLUMNS": "80"}
    first = run_cli("demo", env_extra=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    # No log noise (request logs, Celery's task lines, raw dicts), nothing past 80 columns, no ids.
    assert first.stderr == ""
    for noise in ("[info", "Task ", "succeeded in", "{'", "platform_started", "No hostname"):
        assert noise not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert not UUID.search(out), UUID.search(out)
    assert "…" not in out  # no header or name cut short
    # The money adds up: buyers paid = sellers + commissions + platform fee; each payee's row too.
    paid_line = " ".join(out[out.index("Buyers paid"):out.index("platform fee.")].split())
    total, _refunded, sellers, commissions, fee = _amounts(paid_line)
    assert total == sellers + commissions + fee
    balances = out[out.index("before + earned - paid out = balance"):out.index("growth figures")]
    rows = [_amounts(line) for line in balances.splitlines() if len(_amounts(line)) == 4]
    assert len(rows) == 7  # six payees and the total
    for before, earned, paid, balance in rows:
        assert before + earned - paid == balance
    assert sum(row[1] for row in rows[:-1]) == sellers + commissions == rows[-1][1]

    second = run_cli("demo", env_extra=env, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "reused: Lumen Software" in " ".join(second.stdout.split())
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        affiliates = conn.execute(text("SELECT name, count(*) FROM affiliates GROUP BY name")).all()
        references = conn.execute(text("SELECT bank_reference FROM sellers UNION ALL "
                                       "SELECT bank_reference FROM affiliates")).scalars().all()
    engine.dispose()
    assert sorted(affiliates) == [("Makers Guild", 1), ("Outdoor Alliance", 1), ("Studio Specialists", 1)]
    assert len(references) == 6 and len(set(references)) == 6  # every payee its own bank reference


def test_serve_on_a_busy_port_says_which_port_and_how_to_pick_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env_extra={}, cwd=tmp_path)
    assert result.returncode == 2
    said = " ".join(result.stdout.split())
    assert f"Port {port} on 127.0.0.1 is already in use" in said
    assert f"marketplace serve --port {port + 1}" in said and "Ctrl-C" in said
    assert "Errno" not in result.stdout + result.stderr
    assert not (tmp_path / "marketplace.db").exists()  # nothing was started or written
