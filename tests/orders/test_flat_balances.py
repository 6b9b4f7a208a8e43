"""Flat balances (issue 18): `ledger_balances`, kept in the transaction of every posting, is what
the balance routes read; it equals the journal's sums after payments, refunds and releases,
including when refunds and the release job post to the same payees at once (PostgreSQL), and the
audit names any row that drifts from the journal."""

from __future__ import annotations

import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from celery._state import _set_task_join_will_block
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text, update
from sqlalchemy.orm import Session

from kernel import ledger
from kernel.clock import clock
from kernel.db import make_sessionmaker, new_id, session_scope
from kernel.ledger import AVAILABLE, CLEARING, PLATFORM, SELLER, LedgerBalance, Posting
from marketplace.bootstrap import audit_ledger
from marketplace.migrate import upgrade
from orders.service import settlement
from tests.conftest import Backend
from tests.orders.test_story import fulfil, run_task
from tests.orders.world import World, cart, checkout, ok, worked_example


def journal_sums(env: Backend) -> dict[tuple[str, uuid.UUID | None], dict[str, int]]:
    """{(owner_type, owner_id): {"<currency> <purpose>": balance}} summed from the journal itself."""
    out: dict[tuple[str, uuid.UUID | None], dict[str, int]] = defaultdict(dict)
    with session_scope(env.runtime.sessions) as session:
        for (owner_type, owner_id, purpose, currency), (amount, _n) in ledger.journal_balances(session).items():
            out[(owner_type, None if owner_id == ledger.NO_OWNER else owner_id)][f"{currency} {purpose}"] = amount
    return out


def routes_agree_with_the_journal(client: TestClient, operator: dict[str, str], env: Backend, world: World) -> None:
    journal = journal_sums(env)
    for owner_type, parties in (("seller", world.sellers), ("affiliate", world.affiliates)):
        for party in parties.values():
            want = journal.get((owner_type, uuid.UUID(party.id)), {})
            for row in ok(client.get("/v1/balances", headers=party.headers))["balances"]:
                for purpose in ("pending", "available", "in_transit"):
                    assert row[purpose] == want.get(f"{row['currency']} {purpose}", 0), (party, row, want)
    payees: dict[str, int] = defaultdict(int)
    for (owner_type, _id), sums in journal.items():
        if owner_type != PLATFORM:
            for key, amount in sums.items():
                payees[key] += amount
    for row in ok(client.get("/v1/platform/balances", headers=operator)):
        c = row["currency"]
        platform = journal[(PLATFORM, None)]
        assert (row["clearing"], row["fees"]) == (platform.get(f"{c} clearing", 0), platform.get(f"{c} fees", 0))
        assert (row["payees_pending"], row["payees_available"]) == (payees[f"{c} pending"], payees[f"{c} available"])
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_balance_routes_equal_the_journal_after_payments_fulfilment_a_refund_and_the_release(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    orders = [ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201) for _ in range(3)]
    for order in orders:
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    routes_agree_with_the_journal(client, operator, env, world)
    for order in orders[:2]:
        for sub in order["sub_orders"]:
            fulfil(client, world, "X" if sub["seller_id"] == world.sellers["X"].id else "Y", sub["id"])
    y_line = next(line for line in orders[1]["lines"] if line["variant_id"] == world.variants["Y-KIT"])
    ok(client.post(f"/v1/orders/{orders[1]['id']}/refunds", headers=operator, json={
        "lines": [{"order_line_id": y_line["id"], "quantity": 1}], "reason": "one back"}), 201)
    clock.advance(timedelta(days=31))
    run_task("orders.release_matured")

    routes_agree_with_the_journal(client, operator, env, world)
    # Y: 2 orders x 2050 released, one unit (1025) refunded; the third order's 2050 still pending.
    y = ok(client.get("/v1/balances", headers=world.sellers["Y"].headers))["balances"]
    assert (y[0]["pending"], y[0]["available"]) == (2050, 3075)


def test_the_balance_routes_read_the_balance_table_and_the_audit_names_a_row_that_drifted(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    y = uuid.UUID(world.sellers["Y"].id)
    with session_scope(env.runtime.sessions) as session:
        session.execute(update(LedgerBalance).where(LedgerBalance.owner_id == y)
                        .values(balance=LedgerBalance.balance + 1))

    pending = ok(client.get("/v1/balances", headers=world.sellers["Y"].headers))["balances"][0]["pending"]
    with session_scope(env.runtime.sessions) as session:
        findings = audit_ledger(session)

    assert pending == 2050 + 1  # the route read the table, not the journal
    # books_balance sums the table (the check after it proves the table equals the journal)
    assert [f.check for f in findings] == ["books_balance", "balance_table_matches_journal"]
    assert f"seller {y} pending USD: the balance table holds 2051 in 1 entries, the journal 2050 in 1" in \
        findings[1].detail


def test_a_posting_in_a_rolled_back_savepoint_leaves_the_balances_as_the_journal_is(env: Backend) -> None:
    seller = new_id()

    def move(session: Session, amount: int, ref: str) -> None:
        ledger.post(session, kind="test.move", reference_type="test", reference_id=ref,
                    currency="USD", postings=[Posting(PLATFORM, None, CLEARING, -amount),
                                              Posting(SELLER, seller, AVAILABLE, amount)])

    with session_scope(env.runtime.sessions) as session:
        move(session, 5, "kept")
        with pytest.raises(RuntimeError), session.begin_nested():
            move(session, 7, "rolled back")
            raise RuntimeError("the handler failed")
        with session.begin_nested():
            move(session, 11, "released savepoint")
        # the posting session sees what it has not committed yet
        assert ledger.balance_of(session, SELLER, seller, AVAILABLE, "USD") == 16
    with session_scope(env.runtime.sessions) as session:
        assert ledger.balance_of(session, SELLER, seller, AVAILABLE, "USD") == 16
        assert ledger.balance_of(session, PLATFORM, None, CLEARING, "USD") == -16
        assert list(ledger.check_balance_table(session)) == []


def test_the_migration_fills_the_balance_table_from_an_existing_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0015")
    seller, engine = new_id(), create_engine(url)
    with engine.begin() as conn:
        for amount in (300, 45):
            txn = new_id()
            conn.execute(text("INSERT INTO journal_transactions (id, kind, reference_type, reference_id, currency, "
                              "created_at) VALUES (:id, 'test.old', 'test', :id, 'USD', '2026-01-01 00:00:00')"),
                         {"id": txn.hex})
            for owner_type, owner_id, purpose, signed in (("platform", None, "clearing", -amount),
                                                          ("seller", seller.hex, "available", amount)):
                conn.execute(text("INSERT INTO journal_entries (id, transaction_id, owner_type, owner_id, purpose, "
                                  "currency, amount, created_at) VALUES (:id, :txn, :type, :owner, :purpose, 'USD', "
                                  ":amount, '2026-01-01 00:00:00')"),
                             {"id": new_id().hex, "txn": txn.hex, "type": owner_type, "owner": owner_id,
                              "purpose": purpose, "amount": signed})
    upgrade(url)
    with session_scope(make_sessionmaker(engine)) as session:
        found = {(b.owner_type, b.owner_id, b.purpose): b.amount for b in ledger.balances(session)}
        drift = list(ledger.check_balance_table(session))
    engine.dispose()
    assert found == {("platform", None, "clearing"): -345, ("seller", seller, "available"): 345}
    assert drift == []


@pytest.mark.postgres_only
def test_parallel_refunds_and_release_jobs_on_the_same_payees_never_deadlock_and_keep_balances_exact(
    client: TestClient, operator: dict[str, str], env: Backend, live_server: str
) -> None:
    world = worked_example(client, operator)
    orders = [ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201) for _ in range(12)]
    for order in orders:
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
        for sub in order["sub_orders"]:
            fulfil(client, world, "X" if sub["seller_id"] == world.sellers["X"].id else "Y", sub["id"])
    clock.advance(timedelta(days=31))

    def refund(order: dict[str, object]) -> int:
        with httpx.Client(timeout=60) as http:
            return http.post(f"{live_server}/v1/orders/{order['id']}/refunds", headers=operator,
                             json={"reason": "all back"}).status_code

    def release(_: int) -> tuple[int, int]:
        with session_scope(env.runtime.sessions) as session:
            return settlement.release_matured(session)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            refunds = [pool.submit(refund, order) for order in orders[::2]]
            releases = [pool.submit(release, i) for i in range(4)]
            statuses = [f.result() for f in refunds]
            for f in releases:
                f.result()  # a deadlock would raise here (PostgreSQL aborts one of the two)
    finally:
        # The refunds' tasks ran in-process on the server's threads at once: Celery's `Task.apply`
        # saves and restores a process-wide "joining would block" flag, not per thread, so
        # overlapping applies can leave it set and fail every later test's `.get()`.
        _set_task_join_will_block(False)
    release(0)  # whatever a refund's lock made the jobs skip

    assert statuses == [201] * 6
    routes_agree_with_the_journal(client, operator, env, world)
    # 6 orders left, released: X 6 x 4099, Y 6 x 2050; A 6 x (280 + 140), S 6 x (120 + 60).
    available = {name: ok(client.get("/v1/balances", headers=party.headers))["balances"][0]["available"]
                 for name, party in [*world.sellers.items(), *world.affiliates.items()]}
    assert available == {"X": 6 * 4099, "Y": 6 * 2050, "A": 6 * 420, "S": 6 * 180}
