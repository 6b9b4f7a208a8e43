"""The ledger audit at any size: a set-based history builds realistic paid orders whose audit is
clean; past PostgreSQL's 65,535-parameter limit the audit still runs (no giant IN list); and every
order check still names the corruption it exists to catch, now that each is computed in SQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from kernel.db import session_scope
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend
from tests.embedded_server import newcomer_env
from tests.orders.test_audit_findings import ledger_audit
from tests.orders.world import cart, checkout, ok, worked_example


def history(env: Backend, orders: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.history", "--orders", str(orders),
         "--database-url", env.settings.database_url],
        env=newcomer_env(), capture_output=True, text=True, timeout=600,
    )


@pytest.mark.postgres_only
def test_history_builder_writes_2000_balanced_paid_orders_and_the_audit_is_clean(env: Backend) -> None:
    built = history(env, 2000)
    assert built.returncode == 0, built.stdout + built.stderr

    with env.runtime.engine.connect() as conn:
        orders, paid_total = conn.execute(text(
            "SELECT count(*), sum(total_amount) FROM orders WHERE status = 'paid'")).one()
        clearing = conn.execute(text(
            "SELECT sum(amount) FROM journal_entries WHERE owner_type = 'platform' AND purpose = 'clearing'"
        )).scalar_one()
        pending = conn.execute(text("SELECT sum(amount) FROM journal_entries WHERE purpose = 'pending'")).scalar_one()
        entries = conn.execute(text("SELECT count(*) FROM journal_entries")).scalar_one()
    assert orders == 2000 and clearing == -paid_total
    assert pending == 0  # every share released to available, as the release task leaves it
    assert entries == 2000 * 11
    audit = ledger_audit(env)
    assert audit.returncode == 0 and "ledger audit clean" in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.postgres_only
def test_ledger_audit_is_clean_with_more_paid_orders_than_postgresql_takes_parameters(env: Backend) -> None:
    # One more paid order than a statement may carry parameters: an `IN (<every paid order id>)`
    # fails here with "too many parameters".
    built = history(env, 65_536)
    assert built.returncode == 0, built.stdout + built.stderr

    audit = ledger_audit(env)

    assert audit.returncode == 0 and "ledger audit clean" in audit.stdout, audit.stdout + audit.stderr


# (check that must fire, the corruption, whether it needs a refund first)
CORRUPTIONS = [
    ("order_splits_are_exact", "UPDATE sub_orders SET amount = amount + 1 WHERE id = "
                               "(SELECT min(sub_order_id::text) FROM order_lines WHERE sku = 'Y-KIT')::uuid"),
    ("refunds_never_exceed_shares", "UPDATE commissions SET reversed_amount = amount + 1"),
    ("paid_orders_posted_once", "UPDATE orders SET total_amount = total_amount + 1"),
    ("paid_orders_posted_once", "UPDATE orders SET status = 'cancelled'"),
    ("refunds_match_journal", "UPDATE orders SET refunded_amount = refunded_amount + 1"),
    ("shares_match_journal", "UPDATE commissions SET amount = amount + 1"),
    ("shares_match_journal", "UPDATE sub_orders SET seller_net_amount = seller_net_amount - 1"),
    ("shares_sit_in_their_account", "UPDATE sub_orders SET seller_share_released = true"),
]


@pytest.mark.parametrize(("check", "corruption"), CORRUPTIONS)
def test_each_order_check_computed_in_sql_still_names_its_corruption(
    client: TestClient, operator: dict[str, str], env: Backend, check: str, corruption: str
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []

    sql = corruption
    if not env.is_postgres:
        sql = sql.replace("min(sub_order_id::text)", "min(sub_order_id)").replace(")::uuid", ")")
    with env.runtime.engine.begin() as conn:
        assert conn.execute(text(sql)).rowcount >= 1
    with session_scope(env.runtime.sessions) as session:
        found = {finding.check for finding in audit_ledger(session)}

    assert check in found, found
