"""Refund edges a review found: goods must not ship once everything was refunded, and a partial
refund on a line whose seller net is near zero must not take more than the seller was booked."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from kernel import ledger
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, FEES, PENDING, PLATFORM, SELLER
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend
from tests.orders.world import World, cart, checkout, ok, worked_example


def test_a_sub_order_refunded_in_full_cannot_be_accepted_or_shipped(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    y_line = next(line for line in order["lines"] if line["sku"] == "Y-KIT")
    ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json={
        "lines": [{"order_line_id": y_line["id"], "quantity": 2}], "reason": "buyer cancelled"}), 201)
    y_sub = y_line["sub_order_id"]
    x_sub = next(sub["id"] for sub in order["sub_orders"] if sub["id"] != y_sub)
    y, x = world.sellers["Y"].headers, world.sellers["X"].headers

    for action in ("accept", "ship"):  # (deliver needs accepted or shipped first)
        refused = client.post(f"/v1/sub-orders/{y_sub}/{action}", headers=y,
                              json={"tracking_number": "1Z", "carrier": "UPS"} if action == "ship" else None)
        assert refused.status_code == 409, (action, refused.text)
        assert "every line of it was refunded" in refused.json()["detail"]
    assert ok(client.post(f"/v1/sub-orders/{x_sub}/accept", headers=x))["status"] == "accepted"  # X still ships


def test_partial_refunds_of_a_line_with_a_capped_pool_never_take_more_than_any_share_holds(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    # 2 x 1.05 with a flat 1.00 per unit plan and a 10 % fee: amount 210, fee 21, the pool capped
    # at 189 so the seller nets 0. One unit back: fee 10.5 -> 10, pool 94.5 -> 94 would leave 1 to
    # take from a seller who holds nothing; it goes to the fee instead (11).
    world = World(client, operator)
    world.seller("Z")
    world.product("Z", "Sticker", [("Z-STK", "One", 105, 100)])
    world.program("Z", {"default": {"flat": 100}})
    world.affiliate("A", joins=["Z"])
    world.storefront("A", "z-store", ["Z-STK"])
    order = ok(checkout(client, "z-store", cart(world, ("Z-STK", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    line = order["lines"][0]
    z, a = uuid.UUID(world.sellers["Z"].id), uuid.UUID(world.affiliates["A"].id)

    def balances() -> tuple[int, int, int]:
        with session_scope(env.runtime.sessions) as session:
            assert audit_ledger(session) == []
            return (ledger.balance_of(session, SELLER, z, PENDING, "USD"),
                    ledger.balance_of(session, AFFILIATE, a, PENDING, "USD"),
                    ledger.balance_of(session, PLATFORM, None, FEES, "USD"))

    assert balances() == (0, 189, 21)
    for _ in range(2):
        ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json={
            "lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "one back"}), 201)
        seller, affiliate, fees = balances()
        assert seller == 0 and affiliate >= 0 and fees >= 0
    assert balances() == (0, 0, 0)  # the second refund emptied the line: every share exactly
