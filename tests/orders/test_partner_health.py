"""Partner-health alarms on constructed histories: one test per rule (falling away, dormant,
cost per new customer, refund spike, click-to-order fraud), each opened once by the scheduled
evaluation, announced by webhook to the operator and the sellers concerned, listed in the API,
and open until an operator resolves it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.clock import clock
from kernel.db import session_scope
from kernel.outbound import WebhookDelivery
from kernel.tasking import installed_celery
from tests.conftest import Backend
from tests.orders.world import World, cart, checkout, ok, worked_example

EVALUATE = "orders.evaluate_partner_health"


def evaluate() -> None:
    """What beat does every hour (after the click counters' flush)."""
    installed_celery().tasks["affiliates.flush_clicks"].apply()
    installed_celery().tasks[EVALUATE].apply()


def order(client: TestClient, world: World, operator: dict[str, str], *items: tuple[str, int], slug: str | None =
          "a-store", email: str = "buyer@example.com", **extra: Any) -> dict[str, Any]:
    placed = ok(checkout(client, slug, cart(world, *items, email=email, **extra)), 201)
    ok(client.post(f"/v1/orders/{placed['id']}/mark-paid", headers=operator))
    return dict(placed)


def alarms(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    return list(ok(client.get("/v1/alarms", params=params, headers=headers)))


def rules_of(client: TestClient, operator: dict[str, str], world: World) -> set[str]:
    return {a["rule"] for a in alarms(client, operator, status="open") if a["affiliate_id"] == world.affiliates["A"].id}


def test_a_partner_falling_away_opens_one_alarm_announced_to_operator_and_sellers_until_resolved(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(env.runtime.settings, "operator_webhook_url", "http://127.0.0.1:9/operator")
    world = worked_example(client, operator)
    ok(client.patch("/v1/sellers/me", json={"webhook_url": "http://127.0.0.1:9/x"},
                    headers=world.sellers["X"].headers))
    for _ in range(3):
        order(client, world, operator, ("X-PRO", 1))
    clock.advance(timedelta(days=35))
    order(client, world, operator, ("Y-KIT", 1))
    evaluate()
    evaluate()  # still true: still one alarm
    opened = [a for a in alarms(client, operator) if a["rule"] == "falling_away"]
    assert len(opened) == 1
    alarm = opened[0]
    assert (alarm["affiliate_name"], alarm["status"], alarm["figures"]["revenue"],
            alarm["figures"]["previous_revenue"]) == ("A", "open", 1250, 3 * 4999)
    with session_scope(env.runtime.sessions) as session:
        sent = sorted(d.recipient_type for d in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "partner.alarm")))
    assert sent == ["operator", "seller"]  # once each; Y has no webhook URL
    assert [a["id"] for a in alarms(client, world.sellers["Y"].headers)] == [alarm["id"]]  # A sells Y's too
    assert client.get("/v1/alarms", headers=world.affiliates["A"].headers).status_code == 403
    assert client.post(f"/v1/alarms/{alarm['id']}/resolve", json={}, headers=world.sellers["X"].headers
                       ).status_code == 403
    resolved = ok(client.post(f"/v1/alarms/{alarm['id']}/resolve", json={"note": "called them"}, headers=operator))
    assert (resolved["status"], resolved["resolution_note"]) == ("resolved", "called them")
    assert client.post(f"/v1/alarms/{alarm['id']}/resolve", json={}, headers=operator).status_code == 409
    evaluate()  # the rule still holds: a new alarm opens after the resolved one
    assert [a["status"] for a in alarms(client, operator) if a["rule"] == "falling_away"] == ["open", "resolved"]


def test_a_partner_gone_dormant_after_being_active_is_flagged(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order(client, world, operator, ("X-PRO", 1))
    evaluate()
    assert "dormant" not in rules_of(client, operator, world)
    clock.advance(timedelta(days=35))
    evaluate()
    assert rules_of(client, operator, world) == {"dormant"}


def test_commission_per_new_customer_above_the_threshold_is_flagged(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    ok(client.post(f"/v1/programs/{world.programs['X']}/plan-versions", headers=world.sellers["X"].headers,
                   json={"rules": {"default": {"bps": 5000}}, "note": "generous"}), 201)
    order(client, world, operator, ("X-PRO", 1))  # A earns 70 % of 2499: one new customer, 1749
    evaluate()
    assert "cost_per_new_customer" not in rules_of(client, operator, world)
    for _ in range(2):
        order(client, world, operator, ("X-PRO", 1))  # the same buyer again: 5247 for one new customer
    evaluate()
    assert "cost_per_new_customer" in rules_of(client, operator, world)


def test_a_refund_rate_spike_is_flagged(client: TestClient, operator: dict[str, str], env: Backend) -> None:
    world = worked_example(client, operator)
    placed = [order(client, world, operator, ("Y-KIT", 1)) for _ in range(5)]
    ok(client.post(f"/v1/orders/{placed[0]['id']}/refunds", headers=operator, json={}), 201)
    evaluate()
    assert "refund_spike" not in rules_of(client, operator, world)  # 1 of 5: 20 %, not above
    ok(client.post(f"/v1/orders/{placed[1]['id']}/refunds", headers=operator, json={}), 201)
    evaluate()
    assert "refund_spike" in rules_of(client, operator, world)


def test_click_attributed_orders_out_of_proportion_to_clicks_look_like_fraud(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    link = ok(client.post("/v1/referral-links", headers=world.affiliates["A"].headers,
                          json={"product_id": world.products["X-PRO"]}), 201)
    redirect = client.get(f"/r/{link['code']}", follow_redirects=False)
    token = parse_qs(urlsplit(redirect.headers["location"]).query)["mk_ref"][0]
    for n in range(5):  # five buyers, one click between them
        order(client, world, operator, ("X-PRO", 1), slug=None, email=f"b{n}@example.com", attribution_token=token)
    evaluate()
    alarm = next(a for a in alarms(client, operator, status="open") if a["rule"] == "click_fraud")
    assert (alarm["figures"]["click_orders"], alarm["figures"]["clicks"]) == (5, 1)
