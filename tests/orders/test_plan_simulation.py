"""Plan simulation: a draft plan version priced by the commission engine over a program's stored
orders, partner by partner beside what they earned, with the cost to the seller; nothing written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.conftest import Backend
from tests.orders.world import World, cart, checkout, ok, worked_example


def simulate(client: TestClient, world: World, rules: dict[str, Any], headers: dict[str, str] | None = None,
             **period: str) -> Any:
    since = (clock.now() - timedelta(days=1)).isoformat()
    return client.post(f"/v1/programs/{world.programs['X']}/simulations", headers=headers or world.sellers["X"].headers,
                       json={"rules": rules, "since": since, **period})


def test_a_draft_plan_is_priced_on_stored_orders_per_partner_and_nothing_is_written(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    for email in ("ann@example.com", "bob@example.com", "ann@example.com"):
        order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 1), email=email)), 201)
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    versions_before = ok(client.get(f"/v1/programs/{world.programs['X']}", headers=operator))

    flat = ok(simulate(client, world, {"default": {"bps": 1000}}))
    assert (flat["orders"], flat["lines"]) == (3, 3)  # Y's lines are another program's
    by_name = {p["name"]: p for p in flat["partners"]}
    assert (by_name["A"]["earned"], by_name["A"]["would_earn"], by_name["A"]["difference"]) == (840, 1050, 210)
    assert (by_name["S"]["earned"], by_name["S"]["would_earn"]) == (360, 450)
    assert flat["cost_to_seller"] == [{"currency": "USD", "earned": 1200, "would_earn": 1500, "difference": 300}]

    tiered = ok(simulate(client, world, {"default": {"bps": 800}, "tiers": [{"min_orders": 2, "bps": 1000}],
                                         "first_order_bonus": {"bps": 100}}))
    # bonus on ann's and bob's first orders (+50 of 4999 each); the 3rd order reached the tier (500)
    assert tiered["cost_to_seller"][0]["would_earn"] == 450 + 450 + 500

    assert ok(client.get(f"/v1/programs/{world.programs['X']}", headers=operator)) == versions_before
    assert ok(simulate(client, world, {"default": {"bps": 800}}))["cost_to_seller"][0]["difference"] == 0


def test_a_simulation_is_the_sellers_own_and_its_period_must_make_sense(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    rules = {"default": {"bps": 1000}}
    assert simulate(client, world, rules, world.sellers["Y"].headers).status_code == 404
    assert simulate(client, world, rules, world.affiliates["A"].headers).status_code == 403
    assert simulate(client, world, rules, until=(clock.now() - timedelta(days=2)).isoformat()).status_code == 422
    assert simulate(client, world, {"default": {"bps": 20_000}}).status_code == 422
    assert ok(simulate(client, world, rules, operator))["partners"] == []
