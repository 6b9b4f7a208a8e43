"""Partial refunds one unit at a time never take back more of a share than it was, and end at
exactly zero: the rounding is cumulative, not per refund."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from kernel import ledger
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, PENDING
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend
from tests.orders.world import World, cart, checkout, ok


def affiliate_pending(env: Backend, affiliate_id: str) -> int:
    with session_scope(env.runtime.sessions) as session:
        return ledger.balance_of(session, AFFILIATE, uuid.UUID(affiliate_id), PENDING, "USD")


def test_refunding_six_units_one_by_one_reverses_a_commission_of_4_as_1_0_1_1_0_1_never_more(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = World(client, operator)
    w.seller("X")
    w.product("X", "Thing", [("T", "One", 100, 50)])
    w.program("X", {"default": {"bps": 67}})  # 0.67 % of 600 = 4.02 -> a commission of 4
    w.affiliate("A", joins=["X"])
    w.storefront("A", "a-shop", ["T"])
    order = ok(checkout(client, "a-shop", cart(w, ("T", 6))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    line = order["lines"][0]["id"]
    affiliate = w.affiliates["A"]
    assert affiliate_pending(env, affiliate.id) == 4

    left = []
    for _ in range(6):
        ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                       json={"lines": [{"order_line_id": line, "quantity": 1}], "reason": "one back"}), 201)
        left.append(affiliate_pending(env, affiliate.id))

    # round_half_even(4 * k / 6) for k = 1..6 is 1, 1, 2, 3, 3, 4: what is left is 4 minus that
    assert left == [3, 3, 2, 1, 1, 0]
    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["refunded"]["amount"] == full["total"]["amount"] == 600
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []
