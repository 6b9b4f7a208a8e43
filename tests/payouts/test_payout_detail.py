"""A payout's detail lists what it covers net of refunds: its sales and commissions add up to it."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from kernel.clock import clock
from kernel.db import session_scope
from orders.service import settlement
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def test_a_sellers_payout_lists_its_sales_net_of_a_refund_made_before_the_payout(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    y = world.sellers["Y"]
    sub = order["sub_orders"][0]
    for step in ("accept", "deliver"):
        ok(client.post(f"/v1/sub-orders/{sub['id']}/{step}", headers=y.headers))
    clock.advance(timedelta(days=40))
    with session_scope(env.runtime.sessions) as session:
        settlement.release_matured(session)
    ok(client.post(f"/v1/sub-orders/{sub['id']}/refunds", headers=y.headers, json={  # one of two units back
        "lines": [{"order_line_id": order["lines"][0]["id"], "quantity": 1}], "reason": "one broken"}), 201)
    ok(client.post("/v1/sellers/me/payout-account", headers=y.headers, json={"bank_reference": "IBAN Y"}))
    ok(client.post(f"/v1/sellers/{y.id}/payout-account/verify", headers=operator))
    batch = ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD"}), 201)
    ok(client.post(f"/v1/payout-batches/{batch['id']}/approve", headers=operator))

    [payout] = ok(client.get("/v1/payouts", headers=y.headers))["items"]
    detail = ok(client.get(f"/v1/payouts/{payout['id']}", headers=y.headers))

    assert detail["status"] == "paid" and detail["amount"]["amount"] == 1025  # 2050 less one unit's 1025
    assert [s["amount"]["amount"] for s in detail["sales"]] == [1025]
