"""Quotas: a seller's monthly targets for an affiliate in its program or for the program, their
attainment live, and a plan version's bonus on the affiliate's sales past its quota, paid by the
commission engine at checkout."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def this_month() -> str:
    now = clock.now()
    return f"{now.year:04d}-{now.month:02d}"


def test_sales_past_an_affiliates_quota_earn_the_plans_quota_bonus_and_attainment_is_live(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    x = world.sellers["X"].headers
    ok(client.post(f"/v1/programs/{world.programs['X']}/plan-versions", headers=x, json={
        "rules": {"default": {"bps": 800}, "quota_bonus": {"bps": 500}}, "note": "bonus past quota"}), 201)
    quota = ok(client.post(f"/v1/programs/{world.programs['X']}/quotas", headers=x, json={
        "affiliate_id": world.affiliates["A"].id, "month": this_month(), "metric": "orders", "target": 2}), 201)
    ok(client.post(f"/v1/programs/{world.programs['X']}/quotas", headers=x, json={
        "month": this_month(), "metric": "revenue", "currency": "USD", "target": 10_000}), 201)
    again = ok(client.post(f"/v1/programs/{world.programs['X']}/quotas", headers=x, json={
        "affiliate_id": world.affiliates["A"].id, "month": this_month(), "metric": "orders", "target": 2}), 201)
    assert again["id"] == quota["id"]  # the same target set again replaces it

    pools = []
    for _ in range(3):
        order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
        detail = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
        pools.append(sum(c["amount"]["amount"] for c in detail["commissions"]))
    assert pools == [400, 400, 400 + 250]  # 800 bps; past the quota of 2 orders, +500 bps of 4999

    seen = {(r["affiliate_id"], r["metric"]): r for r in ok(client.get("/v1/quotas", headers=x))}
    mine = seen[(world.affiliates["A"].id, "orders")]
    assert (mine["name"], mine["actual"], mine["attainment"], mine["met"]) == ("A", 3, 1.5, True)
    program = seen[(None, "revenue")]
    assert (program["name"], program["actual"], program["met"]) == ("X", 3 * 4999, True)
    own = ok(client.get("/v1/quotas", headers=world.affiliates["A"].headers))
    assert [r["id"] for r in own] == [quota["id"]]
    assert ok(client.get("/v1/quotas", headers=world.sellers["Y"].headers)) == []
    assert ok(client.get("/v1/quotas", params={"month": "2020-01"}, headers=operator)) == []


def test_a_quota_must_make_sense_and_be_on_your_own_program(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    path = f"/v1/programs/{world.programs['X']}/quotas"
    x, y = world.sellers["X"].headers, world.sellers["Y"].headers
    a = world.affiliates["A"].id
    assert client.post(path, headers=x, json={"affiliate_id": a, "month": this_month(), "metric": "new_customers",
                                              "target": 5}).status_code == 422
    assert client.post(path, headers=x, json={"month": this_month(), "metric": "revenue",
                                              "target": 5}).status_code == 422
    assert client.post(path, headers=x, json={"month": "2026-13", "metric": "orders",
                                              "target": 5}).status_code == 422
    assert client.post(path, headers=y, json={"month": this_month(), "metric": "orders",
                                              "target": 5}).status_code == 404
    assert client.post(path, headers=world.affiliates["A"].headers,
                       json={"month": this_month(), "metric": "orders", "target": 5}).status_code == 403
