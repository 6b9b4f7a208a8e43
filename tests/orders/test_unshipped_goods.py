"""Goods that are not shipped (software levels, services) count as delivered when paid: their
holding periods start at payment, while a shipped seller's part of the same order waits for
its delivery."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.conftest import Backend
from tests.orders.test_story import audit_clean, balances, run_task
from tests.orders.world import cart, checkout, ok, worked_example


def test_a_software_sub_order_is_delivered_at_payment_and_its_shares_mature_without_shipping(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    seller_x = world.sellers["X"].headers
    updated = ok(client.patch(f"/v1/products/{world.products['X-PRO']}", headers=seller_x,
                              json={"requires_shipping": False}))
    assert updated["requires_shipping"] is False
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)

    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))

    statuses = {sub["seller_id"]: sub["status"] for sub in
                ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["sub_orders"]}
    assert statuses == {world.sellers["X"].id: "delivered", world.sellers["Y"].id: "paid"}
    clock.advance(timedelta(days=31))  # past the return window (14 days) and the programs' 30 days
    run_task("orders.release_matured")
    after = balances(client, world)
    assert after["X"] == (0, 4099)  # the worked example's seller X net, available without shipping
    assert after["Y"][1] == 0 and after["Y"][0] > 0  # Y never delivered: still pending
    audit_clean(env)
