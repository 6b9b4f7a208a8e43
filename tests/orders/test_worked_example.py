"""The design's worked settlement example, through the HTTP API, to the minor unit."""

from __future__ import annotations

from collections import defaultdict

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel import ledger
from kernel.db import session_scope
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def journal_of(env: Backend, kind: str) -> dict[tuple[str, str | None, str], int]:
    """The entries of the journal transactions of `kind`, summed per account."""
    totals: dict[tuple[str, str | None, str], int] = defaultdict(int)
    with session_scope(env.runtime.sessions) as session:
        rows = session.execute(
            select(ledger.JournalEntry.owner_type, ledger.JournalEntry.owner_id, ledger.JournalEntry.purpose,
                   ledger.JournalEntry.amount)
            .join(ledger.JournalTransaction, ledger.JournalTransaction.id == ledger.JournalEntry.transaction_id)
            .where(ledger.JournalTransaction.kind == kind)
        ).all()
    for owner_type, owner_id, purpose, amount in rows:
        totals[(owner_type, str(owner_id) if owner_id else None, purpose)] += amount
    return dict(totals)


def audit_clean(env: Backend) -> None:
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_worked_example_splits_the_order_exactly_and_the_refund_reverses_exactly(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    assert order["total"] == {"amount": 7499, "currency": "USD"}
    assert order["payment"]["rail"] == "manual"
    assert len(order["sub_orders"]) == 2

    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["platform_fee"]["amount"] == 750
    assert full["commission_total"]["amount"] == 600
    nets = {s["seller_id"]: (s["amount"]["amount"], s["platform_fee"]["amount"], s["commission"]["amount"],
                             s["seller_net"]["amount"]) for s in full["shares"]}
    x, y, a, s = (world.sellers["X"].id, world.sellers["Y"].id, world.affiliates["A"].id, world.affiliates["S"].id)
    assert nets == {x: (4999, 500, 400, 4099), y: (2500, 250, 200, 2050)}
    by_affiliate_line = sorted((c["affiliate_id"] == a, c["amount"]["amount"]) for c in full["commissions"])
    assert by_affiliate_line == [(False, 60), (False, 120), (True, 140), (True, 280)]

    # Nothing is owed before the buyer pays.
    assert journal_of(env, "order.paid") == {}
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    assert journal_of(env, "order.paid") == {
        ("platform", None, "clearing"): -7499,
        ("seller", x, "pending"): 4099,
        ("seller", y, "pending"): 2050,
        ("affiliate", a, "pending"): 420,
        ("affiliate", s, "pending"): 180,
        ("platform", None, "fees"): 750,
    }
    audit_clean(env)

    y_line = next(line for line in order["lines"] if line["sku"] == "Y-KIT")
    one_cable = {"lines": [{"order_line_id": y_line["id"], "quantity": 1}], "reason": "one cable"}
    refund = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json=one_cable), 201)
    assert refund["amount"] == {"amount": 1250, "currency": "USD"}
    assert journal_of(env, "order.refund") == {
        ("platform", None, "clearing"): 1250,
        ("seller", y, "pending"): -1025,
        ("affiliate", a, "pending"): -70,
        ("affiliate", s, "pending"): -30,
        ("platform", None, "fees"): -125,
    }
    balances = {name: ok(client.get("/v1/balances", headers=party.headers))["balances"]
                for name, party in [*world.sellers.items(), *world.affiliates.items()]}
    assert {name: b[0]["pending"] for name, b in balances.items()} == {"X": 4099, "Y": 1025, "A": 350, "S": 150}
    audit_clean(env)


def test_refunding_the_last_unit_reverses_exactly_what_is_left(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """Three units at 3.33 with 10 % fee and 8 %: per-unit shares do not divide evenly, yet after
    refunding every unit one by one each share is back to exactly zero."""
    world = worked_example(client, operator)
    world.product("X", "Odd Pack", [("X-ODD", "Single", 333, 10)])
    ok(client.post("/v1/storefronts/a-store/listings", headers=world.affiliates["A"].headers,
                   json={"product_id": world.products["X-ODD"]}), 201)
    order = ok(checkout(client, "a-store", cart(world, ("X-ODD", 3))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    line_id = order["lines"][0]["id"]
    refunded = 0
    for _ in range(3):
        refund = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                                json={"lines": [{"order_line_id": line_id, "quantity": 1}]}), 201)
        refunded += refund["amount"]["amount"]
    assert refunded == 999
    for name, party in [*world.sellers.items(), *world.affiliates.items()]:
        pending = ok(client.get("/v1/balances", headers=party.headers))["balances"]
        assert all(b["pending"] == 0 for b in pending), name
    over = client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                       json={"lines": [{"order_line_id": line_id, "quantity": 1}]})
    assert over.status_code == 422
    audit_clean(env)
