"""A split partner earns its part of a line only as an approved member of that line's seller's
program: a seller that removes (or never admitted) the partner stops paying it, the selling
affiliate's other partners share the pool by their weights, and the preview says the same."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.orders.test_story import audit_clean
from tests.orders.world import World, cart, checkout, ok, worked_example


def commissions_by_line(client: TestClient, operator: dict[str, str], order_id: str, world: World,
                        ) -> dict[str, list[tuple[str, str, int]]]:
    """sku -> sorted (affiliate, role, amount) of that line's commissions."""
    full = ok(client.get(f"/v1/orders/{order_id}", headers=operator))
    sku_of_line = {line["id"]: line["sku"] for line in full["lines"]}
    names = {party.id: name for name, party in world.affiliates.items()}
    out: dict[str, list[tuple[str, str, int]]] = {}
    for c in full["commissions"]:
        out.setdefault(sku_of_line[c["order_line_id"]], []).append((names[c["affiliate_id"]], c["role"],
                                                                    c["amount"]["amount"]))
    return {sku: sorted(rows) for sku, rows in out.items()}


def remove_member(world: World, seller: str, affiliate: str) -> None:
    program_id, headers = world.programs[seller], world.sellers[seller].headers
    members = ok(world.client.get(f"/v1/programs/{program_id}/memberships", headers=headers))["items"]
    membership = next(m for m in members if m["affiliate_id"] == world.affiliates[affiliate].id)
    ok(world.client.post(f"/v1/programs/{program_id}/memberships/{membership['id']}/remove", headers=headers,
                         json={"reason": "not our specialist any more"}))


def test_a_partner_removed_from_one_sellers_program_stops_earning_on_that_sellers_lines_only(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)  # A's storefront splits 70/30 with S; S joined X and Y
    body = cart(world, ("X-PRO", 1), ("Y-KIT", 2))
    before = ok(checkout(client, "a-store", body), 201)
    assert commissions_by_line(client, operator, before["id"], world) == {
        "X-PRO": [("A", "affiliate", 280), ("S", "split_partner", 120)],
        "Y-KIT": [("A", "affiliate", 140), ("S", "split_partner", 60)],
    }

    remove_member(world, "X", "S")
    preview = ok(client.post("/v1/commissions/preview", headers=world.affiliates["A"].headers, json={
        "items": body["items"], "buyer_email": "buyer@example.com", "storefront_slug": "a-store"}))
    after = ok(checkout(client, "a-store", body), 201)

    expected = {
        "X-PRO": [("A", "affiliate", 400)],  # S's 30 % of X's sale stays with A: S is not X's partner now
        "Y-KIT": [("A", "affiliate", 140), ("S", "split_partner", 60)],
    }
    assert commissions_by_line(client, operator, after["id"], world) == expected
    assert [sorted((c["affiliate_id"], c["amount"]["amount"]) for c in line["commissions"])
            for line in preview["lines"]] == [[(world.affiliates["A"].id, 400)],
                                              sorted([(world.affiliates["A"].id, 140),
                                                      (world.affiliates["S"].id, 60)])]
    # The sellers' nets do not move (the pool is the same, only who shares it); what S already
    # earned on X stays.
    assert after["total"] == before["total"]
    assert commissions_by_line(client, operator, before["id"], world)["X-PRO"] == [
        ("A", "affiliate", 280), ("S", "split_partner", 120)]
    audit_clean(env)


def test_a_three_way_split_shares_the_pool_among_the_partners_that_are_members(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator, slug="base")
    world.affiliate("T", joins=["Y"])  # a third partner, in Y's program only
    ok(client.patch("/v1/storefronts/base", headers=world.affiliates["A"].headers, json={"splits": [
        {"affiliate_id": world.affiliates[name].id, "weight": weight} for name, weight in (("A", 2), ("S", 1),
                                                                                          ("T", 1))]}))
    order = ok(checkout(client, "base", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)

    assert commissions_by_line(client, operator, order["id"], world) == {
        "X-PRO": [("A", "affiliate", 267), ("S", "split_partner", 133)],  # 400 by 2:1 (T not in X)
        "Y-KIT": [("A", "affiliate", 100), ("S", "split_partner", 50), ("T", "split_partner", 50)],
    }
    audit_clean(env)
