"""`marketplace ledger audit` catches a minor unit gone astray: a share edited behind the
platform's back makes it name the broken rule and exit 1."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import Backend
from tests.embedded_server import newcomer_env
from tests.orders.world import cart, checkout, ok, worked_example


def ledger_audit(env: Backend) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketplace.cli", "ledger", "audit"],
        env=newcomer_env() | {"DATABASE_URL": env.settings.database_url}, capture_output=True, text=True, timeout=120,
    )


def test_ledger_audit_is_clean_then_names_a_platform_fee_off_by_one_minor_unit_and_exits_1(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    clean = ledger_audit(env)
    assert clean.returncode == 0 and "ledger audit clean" in clean.stdout, clean.stdout + clean.stderr

    with env.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE order_lines SET platform_fee_amount = platform_fee_amount + 1 "
                          "WHERE sku = 'Y-KIT'"))
    found = ledger_audit(env)

    assert found.returncode == 1
    assert "order_splits_are_exact" in found.stdout
