"""Volume tiers count orders: carts that expire unpaid are taken back out of the affiliate's
month-to-date counter, so they never lift it into a higher tier."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.orders.test_story import run_task
from tests.orders.world import World, cart, checkout, ok

TIERED = {"default": {"bps": 1000}, "tiers": [{"min_orders": 2, "bps": 2000}]}


def commission_of_third_order(client: TestClient, operator: dict[str, str], slug: str, pay_first_two: bool) -> int:
    w = World(client, operator)
    w.seller("X")
    w.product("X", "Thing", [("T", "One", 10000, 50)])
    w.program("X", TIERED)
    w.affiliate("A", joins=["X"])
    w.storefront("A", slug, ["T"])
    for _ in range(2):
        order = ok(checkout(client, slug, cart(w, ("T", 1))), 201)
        if pay_first_two:
            ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    if not pay_first_two:
        clock.advance(timedelta(minutes=61))  # past the unpaid-order timeout (60 minutes)
        assert run_task("orders.expire_unpaid") == 2
    third = ok(checkout(client, slug, cart(w, ("T", 1))), 201)
    paid = ok(client.post(f"/v1/orders/{third['id']}/mark-paid", headers=operator))
    return sum(c["amount"]["amount"] for c in paid["commissions"])


def test_two_paid_orders_reach_the_tier_but_two_expired_carts_do_not(
    client: TestClient, operator: dict[str, str]
) -> None:
    assert commission_of_third_order(client, operator, "paid-shop", pay_first_two=True) == 2000
    assert commission_of_third_order(client, operator, "unpaid-shop", pay_first_two=False) == 1000
