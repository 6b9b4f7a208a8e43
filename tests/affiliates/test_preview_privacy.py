"""The commission preview does not tell sellers or affiliates who has bought before."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.orders.world import cart, checkout, ok, worked_example


def test_only_an_operators_preview_depends_on_whether_the_buyer_ordered_before(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1), email="alice@customers.example")), 201)
    snoop = world.affiliate("Snoop")  # no tie to seller Y, the storefront or the order

    def preview(headers: dict[str, str], email: str) -> dict[str, Any]:
        body = {"items": [{"variant_id": world.variants["Y-KIT"], "quantity": 1}], "buyer_email": email}
        return dict(ok(client.post("/v1/commissions/preview", json=body, headers=headers)))

    y = world.sellers["Y"].id
    for headers in (snoop.headers, world.sellers["Y"].headers):
        alice, bob = preview(headers, "alice@customers.example"), preview(headers, "bob@customers.example")
        assert alice == bob and alice["first_order_sellers"] == [y]  # priced as a first order
    assert preview(operator, "alice@customers.example")["first_order_sellers"] == []
    assert preview(operator, "bob@customers.example")["first_order_sellers"] == [y]
