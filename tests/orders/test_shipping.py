"""Shipping per seller (issue 17), through the API: profiles, zones and rates, quotes, the chosen
rate in each sub-order and the seller's share, and the refund rules for shipping."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.orders.test_worked_example import audit_clean, journal_of
from tests.orders.world import World, cart, checkout, ok, worked_example


def profile(client: TestClient, world: World, seller: str, zones: list[str], rates: list[dict[str, Any]]) -> Any:
    body = {"name": f"{seller} shipping", "currency": "USD", "zones": zones, "rates": rates}
    return ok(client.post("/v1/shipping-profiles", headers=world.sellers[seller].headers, json=body), 201)


def rate_id(created: Any, name: str) -> str:
    return str(next(rate["id"] for rate in created["rates"] if rate["name"] == name))


def shipping_world(client: TestClient, operator: dict[str, str]) -> tuple[World, str, str]:
    """The worked example, X shipping a flat 5.00 to the US, Y 2.00 per item to California."""
    world = worked_example(client, operator)
    x = profile(client, world, "X", ["US"], [{"name": "Standard", "kind": "flat", "amount": 500}])
    y = profile(client, world, "Y", ["US-CA"], [{"name": "Per cable", "kind": "per_item", "amount": 200}])
    return world, rate_id(x, "Standard"), rate_id(y, "Per cable")


def choose(world: World, **rates: str) -> list[dict[str, str]]:
    return [{"seller_id": world.sellers[name].id, "rate_id": rate} for name, rate in rates.items()]


def to_california(world: World, *items: tuple[str, int], **extra: Any) -> dict[str, Any]:
    body = cart(world, *items, **extra)
    body["shipping_address"]["region"] = "CA"
    return body


def test_worked_example_with_shipping_pays_each_seller_its_shipping_and_sums_to_what_the_buyer_paid(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world, x_rate, y_rate = shipping_world(client, operator)
    body = to_california(world, ("X-PRO", 1), ("Y-KIT", 2), shipping=choose(world, X=x_rate, Y=y_rate))
    order = ok(checkout(client, "a-store", body), 201)
    assert order["shipping"]["amount"] == 900
    assert order["total"]["amount"] == 7499 + 500 + 400
    x, y, a, s = (world.sellers["X"].id, world.sellers["Y"].id, world.affiliates["A"].id, world.affiliates["S"].id)
    assert {sub["seller_id"]: (sub["amount"]["amount"], sub["shipping"]["amount"], sub["shipping_method"])
            for sub in order["sub_orders"]} == {x: (5499, 500, "Standard"), y: (2900, 400, "Per cable")}

    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    # Shipping carries no fee and no commission: both are the worked example's, to the minor unit.
    assert (full["platform_fee"]["amount"], full["commission_total"]["amount"]) == (750, 600)
    assert {sh["seller_id"]: sh["seller_net"]["amount"] for sh in full["shares"]} == {x: 4099 + 500, y: 2050 + 400}

    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    paid = journal_of(env, "order.paid")
    assert paid == {
        ("platform", None, "clearing"): -8399,
        ("seller", x, "pending"): 4599,
        ("seller", y, "pending"): 2450,
        ("affiliate", a, "pending"): 420,
        ("affiliate", s, "pending"): 180,
        ("platform", None, "fees"): 750,
    }
    assert sum(paid.values()) == 0
    audit_clean(env)

    # One cable of two: a partial refund of Y's part keeps its shipping.
    y_line = next(line for line in order["lines"] if line["sku"] == "Y-KIT")
    one = {"lines": [{"order_line_id": y_line["id"], "quantity": 1}]}
    first = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json=one), 201)
    assert (first["amount"]["amount"], first["shipping"]["amount"]) == (1250, 0)
    # The last cable empties Y's part: its shipping goes back with it, all of it the seller's.
    second = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json=one), 201)
    assert (second["amount"]["amount"], second["shipping"]["amount"]) == (1250 + 400, 400)
    assert journal_of(env, "order.refund")[("seller", y, "pending")] == -2450
    y_balance = ok(client.get("/v1/balances", headers=world.sellers["Y"].headers))["balances"][0]
    assert y_balance["pending"] == 0
    audit_clean(env)


def test_a_partial_refund_gives_shipping_back_only_when_asked(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world, x_rate, _ = shipping_world(client, operator)
    body = cart(world, ("X-PRO", 2), shipping=choose(world, X=x_rate))
    order = ok(checkout(client, "a-store", body), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    line = order["lines"][0]["id"]
    asked = {"lines": [{"order_line_id": line, "quantity": 1}], "include_shipping": True}
    refund = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json=asked), 201)
    assert (refund["amount"]["amount"], refund["shipping"]["amount"]) == (4999 + 500, 500)
    # Shipping is given back once: the last unit's refund finds none left.
    rest = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json={}), 201)
    assert (rest["amount"]["amount"], rest["shipping"]["amount"]) == (4999, 0)
    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["refunded"]["amount"] == full["total"]["amount"] == 2 * 4999 + 500
    assert full["shares"][0]["refunded_shipping"]["amount"] == 500
    audit_clean(env)


def test_a_seller_rejecting_its_part_refunds_its_shipping(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world, x_rate, y_rate = shipping_world(client, operator)
    body = to_california(world, ("X-PRO", 1), ("Y-KIT", 1), shipping=choose(world, X=x_rate, Y=y_rate))
    order = ok(checkout(client, "a-store", body), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    y_sub = next(sub for sub in order["sub_orders"] if sub["seller_id"] == world.sellers["Y"].id)
    ok(client.post(f"/v1/sub-orders/{y_sub['id']}/reject", headers=world.sellers["Y"].headers,
                   json={"reason": "out of cables"}))
    refunds = ok(client.get(f"/v1/orders/{order['id']}/refunds", headers=operator))
    assert [(r["amount"]["amount"], r["shipping"]["amount"]) for r in refunds] == [(1250 + 200, 200)]
    audit_clean(env)


def test_the_quote_lists_each_sellers_rates_for_the_destination_weight_and_subtotal(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    pro = world.variants["X-PRO"]
    ok(client.patch(f"/v1/products/{world.products['X-PRO']}/variants/{pro}", headers=world.sellers["X"].headers,
                    json={"weight_grams": 800}))
    profile(client, world, "X", ["US-CA", "CA"], [
        {"name": "Light", "kind": "weight_band", "amount": 300, "min_weight_grams": 0, "max_weight_grams": 1000},
        {"name": "Heavy", "kind": "weight_band", "amount": 900, "min_weight_grams": 1001, "max_weight_grams": 5000},
        {"name": "Courier", "kind": "per_item", "amount": 150, "free_over_amount": 9000},
    ])

    def quote(quantity: int, country: str, region: str | None = None) -> dict[str, Any]:
        body = {"items": [{"variant_id": pro, "quantity": quantity}, {"variant_id": world.variants["Y-KIT"],
                                                                      "quantity": 1}],
                "country": country, "region": region}
        sellers = ok(client.post("/v1/shipping/quote", json=body))["sellers"]
        return {s["seller_id"]: (s["required"], [(o["name"], o["amount"]["amount"]) for o in s["options"]])
                for s in sellers}

    x, y = world.sellers["X"].id, world.sellers["Y"].id
    assert quote(1, "US", "CA") == {x: (True, [("Courier", 150), ("Light", 300)]), y: (False, [])}
    # 2 units: 1,600 g (the heavy band) and 99.98 of X's goods (courier free over 90.00).
    assert quote(2, "CA") == {x: (True, [("Courier", 0), ("Heavy", 900)]), y: (False, [])}
    assert quote(1, "US", "NY") == {x: (True, []), y: (False, [])}
    bad = client.post("/v1/shipping/quote", json={"items": [{"variant_id": pro, "quantity": 1}], "country": "usa"})
    assert bad.status_code == 422


def test_checkout_refuses_a_missing_foreign_or_unshippable_rate_and_writes_nothing(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world, x_rate, y_rate = shipping_world(client, operator)

    def refused(body: dict[str, Any], status: int = 422) -> dict[str, Any]:
        response = checkout(client, "a-store", body)
        assert response.status_code == status, response.text
        return dict(response.json())

    assert refused(cart(world, ("X-PRO", 1)))["type"].endswith("invalid-shipping")  # X ships with a rate
    assert "not one of seller" in refused(cart(world, ("X-PRO", 1), shipping=[
        {"seller_id": world.sellers["X"].id, "rate_id": y_rate}]))["detail"]
    # Y ships to California only.
    assert "does not ship to US" in refused(cart(world, ("Y-KIT", 1), shipping=choose(world, Y=y_rate)))["detail"]
    assert "nothing in this cart" in refused(cart(world, ("X-PRO", 1), shipping=choose(
        world, X=x_rate, Y=y_rate)))["detail"]
    twice = cart(world, ("X-PRO", 1), shipping=choose(world, X=x_rate) * 2)
    refused(twice)
    orders = ok(client.get("/v1/orders", headers=operator))
    assert orders["items"] == []

    # Archived: X ships without a rate again, and its old rate is refused.
    profiles = ok(client.get("/v1/shipping-profiles", headers=world.sellers["X"].headers))
    ok(client.post(f"/v1/shipping-profiles/{profiles[0]['id']}/archive", headers=world.sellers["X"].headers))
    assert refused(cart(world, ("X-PRO", 1), shipping=choose(world, X=x_rate)))["type"].endswith("invalid-shipping")
    plain = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    assert (plain["shipping"]["amount"], plain["total"]["amount"]) == (0, 4999)


def test_shipping_profiles_are_validated_and_each_sellers_own(client: TestClient, operator: dict[str, str]) -> None:
    world = worked_example(client, operator)
    headers = world.sellers["X"].headers

    def post(body: dict[str, Any]) -> int:
        return int(client.post("/v1/shipping-profiles", headers=headers, json=body).status_code)

    good = {"name": "P", "currency": "USD", "zones": ["US"], "rates": [{"name": "R", "kind": "flat", "amount": 0}]}
    assert post(good) == 201
    assert post({**good, "zones": ["usa"]}) == 422
    assert post({**good, "rates": [{"name": "R", "kind": "weight_band", "amount": 1}]}) == 422
    assert post({**good, "rates": [{"name": "R", "kind": "flat", "amount": -1}]}) == 422
    assert post({**good, "rates": [{"name": "R", "kind": "flat", "amount": 1, "max_weight_grams": 5}]}) == 422
    assert post({**good, "currency": "XXX"}) == 422
    mine = ok(client.get("/v1/shipping-profiles", headers=headers))
    assert ok(client.get("/v1/shipping-profiles", headers=world.sellers["Y"].headers)) == []
    foreign = client.post(f"/v1/shipping-profiles/{mine[0]['id']}/archive", headers=world.sellers["Y"].headers)
    assert foreign.status_code == 404
    assert client.post("/v1/shipping-profiles", headers=world.affiliates["A"].headers, json=good).status_code == 403
