"""An order keeps what the buyer bought: renaming, repricing and archiving the product later
changes neither the order's lines nor its shares."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.orders.world import cart, checkout, ok, worked_example


def test_product_rename_reprice_and_archive_after_an_order_leave_the_order_as_it_was_bought(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    before = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    seller = world.sellers["X"].headers
    product, variant = world.products["X-PRO"], world.variants["X-PRO"]

    ok(client.patch(f"/v1/products/{product}", headers=seller, json={"name": "Renamed Suite"}))
    ok(client.patch(f"/v1/products/{product}/variants/{variant}", headers=seller,
                    json={"name": "Platinum", "price": {"amount": 99900, "currency": "USD"}}))
    ok(client.post(f"/v1/products/{product}/archive", headers=seller))

    after = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert after == before
    [line] = after["lines"]
    assert (line["product_name"], line["unit_price"]["amount"], line["quantity"]) == ("Studio Suite", 4999, 2)
    sub_view = ok(client.get(f"/v1/sub-orders/{after['sub_orders'][0]['id']}", headers=seller))
    assert sub_view["lines"][0]["product_name"] == "Studio Suite"
