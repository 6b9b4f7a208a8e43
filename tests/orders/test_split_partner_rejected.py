"""A split partner the operator rejects earns nothing on later orders: it leaves the storefront's
split list and the market maker keeps the whole pool; what it already earned stays."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.orders.test_story import audit_clean
from tests.orders.world import cart, checkout, ok, worked_example


def commissions_of(client: TestClient, operator: dict[str, str], order_id: str) -> list[tuple[str, str, int]]:
    full = ok(client.get(f"/v1/orders/{order_id}", headers=operator))
    return sorted((c["affiliate_id"], c["role"], c["amount"]["amount"]) for c in full["commissions"])


def test_a_rejected_split_partner_earns_no_split_on_later_orders_and_keeps_what_it_earned(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)  # A's storefront splits 70/30 with S; X pays 800 bps
    a, s = world.affiliates["A"].id, world.affiliates["S"].id
    before = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    assert commissions_of(client, operator, before["id"]) == sorted([(a, "affiliate", 280), (s, "split_partner", 120)])

    ok(client.post(f"/v1/affiliates/{s}/reject", headers=operator, json={"reason": "fake audience"}))
    after = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)

    assert commissions_of(client, operator, after["id"]) == [(a, "affiliate", 400)]
    assert commissions_of(client, operator, before["id"]) == sorted([(a, "affiliate", 280), (s, "split_partner", 120)])
    settings = ok(client.get("/v1/storefronts/a-store/settings", headers=world.affiliates["A"].headers))
    assert settings["splits"] in (None, [])
    audit_clean(env)
