"""kernel.locking: the global lock order, the helpers that lock in it, and the recorder that checks
it (which row locks a statement takes; which sequences break the order)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from kernel import locking
from kernel.db import autocommit_engine, session_scope
from kernel.locking import LockRecorder, LockStep, RowLock, TransactionLocks, row_locks
from orders.models import Commission, Order, SubOrder
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def test_a_select_for_update_locks_the_rows_of_its_from_clause() -> None:
    assert row_locks("SELECT orders.id FROM orders WHERE orders.id = %(id_1)s::UUID FOR UPDATE") == (
        RowLock("orders", True),)
    assert row_locks("SELECT s.id FROM sub_orders AS s WHERE s.id IN (SELECT id FROM orders) LIMIT 5 "
                     "FOR UPDATE SKIP LOCKED") == (RowLock("sub_orders", False),)
    assert row_locks("SELECT a.id FROM payout_items AS a JOIN payout_batches b ON a.batch_id = b.id "
                     "FOR UPDATE OF a NOWAIT") == (RowLock("payout_items", False),)


def test_updates_deletes_and_upserts_take_row_locks_and_plain_inserts_do_not() -> None:
    assert row_locks("UPDATE orders SET status=%(status)s WHERE orders.id = %(id)s") == (RowLock("orders", True),)
    assert row_locks("DELETE FROM storefront_listings WHERE id = 1") == (RowLock("storefront_listings", True),)
    assert row_locks("INSERT INTO affiliate_monthly_sales (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET "
                     "orders = affiliate_monthly_sales.orders + 1") == (RowLock("affiliate_monthly_sales", True),)
    assert row_locks("INSERT INTO journal_entries (a) VALUES (1)") == ()
    assert row_locks("SELECT 'FOR UPDATE' AS a FROM orders") == ()
    assert row_locks("CREATE TABLE x (a int REFERENCES y ON UPDATE CASCADE)") == ()


def test_the_locks_of_one_statement_come_in_the_order_of_its_ctes() -> None:
    """The checkout's cart reservation: the variant rows (FOR UPDATE in a CTE), then its UPDATE."""
    reservation = ("WITH locked AS (SELECT v.id, v.stock FROM variants AS v WHERE v.id = ANY($1) ORDER BY v.id "
                   "FOR UPDATE), reserved AS (UPDATE variants SET stock = variants.stock - 1 FROM locked "
                   "WHERE variants.id = locked.id RETURNING variants.id) SELECT 1")
    assert row_locks(reservation) == (RowLock("variants", True),) * 2
    assert row_locks("WITH a AS (UPDATE sub_orders SET x = 1 RETURNING id), b AS (SELECT id FROM commissions "
                     "FOR UPDATE) SELECT 1") == (RowLock("sub_orders", True), RowLock("commissions", True))


def _txn(*tables: str) -> TransactionLocks:
    return TransactionLocks([LockStep(t.removesuffix("?"), not t.endswith("?"), "sql") for t in tables])


def test_a_transaction_that_locks_in_the_global_order_has_no_violation() -> None:
    assert _txn("webhook_events", "orders", "sub_orders", "commissions", "variants", "orders").violations() == []


def test_a_lock_below_one_already_held_is_a_violation_naming_both_tables() -> None:
    """The deadlock of issue 11: a refund took commissions, then sub-orders; a freeze the reverse."""
    [found] = _txn("orders", "commissions", "sub_orders").violations()
    assert "sub_orders (rank" in found and "after commissions" in found


def test_skip_locked_never_waits_but_counts_as_held() -> None:
    assert _txn("commissions?", "sub_orders?").violations() == []
    assert len(_txn("commissions?", "sub_orders").violations()) == 1


def test_a_guarded_table_is_free_of_the_order_only_under_its_guard() -> None:
    assert _txn("orders", "variants", "order_lines").violations() == []
    assert len(_txn("variants", "order_lines").violations()) == 1


def test_a_table_without_a_place_in_the_order_is_reported() -> None:
    [found] = _txn("orders", "mystery").violations()
    assert "mystery takes row locks but has no place" in found


def test_lock_statements_are_ordered_by_the_primary_key_whatever_order_they_came_with() -> None:
    stmt = locking.for_update(select(Commission.id).where(Commission.amount > 0), skip_locked=True)
    sql = str(stmt.compile(dialect=postgresql.dialect()))
    assert "ORDER BY commissions.id" in sql and sql.rstrip().endswith("FOR UPDATE SKIP LOCKED")
    reordered = str(locking.for_update(select(Commission).order_by(Commission.amount)).compile(
        dialect=postgresql.dialect()))
    assert "ORDER BY commissions.id FOR UPDATE" in reordered
    assert "commissions.amount" not in reordered.split("ORDER BY")[1]


def _an_unpaid_order(client: TestClient, operator: dict[str, str]) -> uuid.UUID:
    world = worked_example(client, operator)
    return uuid.UUID(ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 1))), 201)["id"])


@pytest.mark.postgres_only
@pytest.mark.lock_order_unchecked  # it breaks the order on purpose
def test_the_recorder_reports_a_transaction_that_locks_out_of_order_on_postgresql(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    order_id = _an_unpaid_order(client, operator)
    with LockRecorder() as recorder:
        with session_scope(env.runtime.sessions) as session:
            session.execute(select(Commission.id).where(Commission.order_id == order_id).with_for_update())
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update())
        with session_scope(env.runtime.sessions) as session:  # a new transaction starts afresh
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update())
            session.execute(select(Order.id).where(Order.id == uuid.uuid4()).with_for_update())  # locks no row
        with session_scope(env.runtime.sessions, bind=autocommit_engine(env.runtime.engine)) as session:
            session.execute(select(Commission.id).where(Commission.order_id == order_id).with_for_update())
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update())  # its own transaction
    [found] = recorder.violations()
    assert found.startswith("orders (rank") and "after commissions" in found
    assert [txn.sequence() for txn in recorder.transactions] == [
        "commissions -> orders", "orders", "commissions", "orders"]


@pytest.mark.postgres_only
def test_lock_all_takes_tables_in_rank_order_whatever_order_it_is_given_on_postgresql(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    order_id = _an_unpaid_order(client, operator)
    with LockRecorder(env.runtime.engine) as recorder, session_scope(env.runtime.sessions) as session:
        commissions, subs = locking.lock_all(session, [
            select(Commission.id).where(Commission.order_id == order_id),
            select(SubOrder.id).where(SubOrder.order_id == order_id),
        ])
    assert [txn.sequence() for txn in recorder.transactions] == ["sub_orders -> commissions"]
    assert len(commissions) == 4 and len(subs) == 2  # each line's commission is split between A and S
    assert [row.id for row in commissions] == sorted(row.id for row in commissions)
