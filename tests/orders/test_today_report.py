"""`GET /v1/reports/today`: the operator console's home figures, per currency: orders placed and
paid today, sales, fees, refunds, and what payees are owed now."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def test_today_counts_orders_sales_fees_refunds_and_what_payees_are_owed(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    clock.advance(-timedelta(days=1))  # an order paid yesterday counts for today's balances only
    old = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    ok(client.post(f"/v1/orders/{old['id']}/mark-paid", headers=operator))
    clock.reset()
    paid = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{paid['id']}/mark-paid", headers=operator))
    ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1))), 201)  # placed, not paid
    y_line = next(line for line in paid["lines"] if line["sku"].startswith("Y"))
    ok(client.post(f"/v1/orders/{paid['id']}/refunds", headers=operator,
                   json={"lines": [{"order_line_id": y_line["id"], "quantity": 1}]}), 201)

    today = ok(client.get("/v1/reports/today", headers=operator))

    assert today["date"] == clock.now().date().isoformat()
    [usd] = today["currencies"]
    assert (usd["orders_placed"], usd["orders_paid"]) == (2, 1)
    assert (usd["sales"], usd["platform_fees"], usd["commissions"]) == (7499, 750, 600)  # the worked example
    assert (usd["refunds"], usd["refunded"]) == (1, 1250)
    # Both paid orders' shares, less the refund, wait in the holding period: seller nets and commissions.
    assert usd["payees_pending"] == (4099 + 400) + (6149 + 600) - (1025 + 100)
    assert usd["payees_available"] == usd["payees_in_transit"] == 0


def test_today_is_for_operators_only(client: TestClient, operator: dict[str, str], env: Backend) -> None:
    world = worked_example(client, operator)
    assert client.get("/v1/reports/today", headers=world.sellers["X"].headers).status_code == 403
    assert ok(client.get("/v1/reports/today", headers=operator))["currencies"] == []
