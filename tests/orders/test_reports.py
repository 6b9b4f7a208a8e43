"""Growth figures per affiliate, seller and storefront, and who may read them."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def test_growth_report_shows_customers_order_value_frequency_and_sources(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    for email, items in [("ann@example.com", [("X-PRO", 1)]), ("ann@example.com", [("Y-KIT", 2)]),
                         ("bob@example.com", [("X-PRO", 1), ("Y-KIT", 2)])]:
        order = ok(checkout(client, "a-store", cart(world, *items, email=email)), 201)
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    rows = ok(client.get("/v1/reports/growth", params={"group_by": "affiliate"}, headers=operator))
    a = next(row for row in rows if row["group_id"] == world.affiliates["A"].id)
    assert (a["orders"], a["customers"], a["new_customers"]) == (3, 2, 2)
    assert a["revenue"] == 4999 + 2500 + 7499
    assert a["average_order_value"] == (4999 + 2500 + 7499) // 3
    assert a["purchase_frequency"] == 1.5
    assert a["sources"] == {"storefront": 3}
    assert a["commissions"] == 280 + 140 + 420  # A's 70 % of 400 + 200 + 600
    assert a["commission_per_new_customer"] == (280 + 140 + 420) // 2

    sellers = ok(client.get("/v1/reports/growth", params={"group_by": "seller"}, headers=world.sellers["Y"].headers))
    assert [(r["group_id"], r["orders"], r["customers"]) for r in sellers] == [(world.sellers["Y"].id, 2, 2)]
    assert client.get("/v1/reports/growth", params={"group_by": "affiliate"},
                      headers=world.sellers["Y"].headers).status_code == 403
    fronts = ok(client.get("/v1/reports/growth", params={"group_by": "storefront"},
                           headers=world.affiliates["S"].headers))
    assert fronts == []  # the storefront is A's, not S's


def test_a_partner_whose_sales_fell_away_is_flagged(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    for _ in range(3):
        order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    clock.advance(timedelta(days=35))
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    rows = ok(client.get("/v1/reports/growth", params={"group_by": "affiliate"}, headers=operator))
    a = next(row for row in rows if row["group_id"] == world.affiliates["A"].id)
    assert (a["sales_previous_30_days"], a["sales_last_30_days"]) == (3 * 4999, 1250)
    assert a["falling_away"] is True


def test_growth_rows_name_their_seller_affiliate_or_storefront_beside_the_id(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 1))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    names = {group_by: {row["group_id"]: row["name"] for row in ok(client.get(
        "/v1/reports/growth", params={"group_by": group_by}, headers=operator))}
        for group_by in ("seller", "affiliate", "storefront")}
    assert names["seller"] == {world.sellers["X"].id: "X", world.sellers["Y"].id: "Y"}
    assert names["affiliate"] == {world.affiliates["A"].id: "A"}
    assert list(names["storefront"].values()) == ["A-Store"]
